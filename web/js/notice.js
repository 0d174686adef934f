// The one-line notice above the composer (connection trouble, refusals, errors).
// A message is a string or a function that makes it (called again when the language changes);
// a countdown shows the seconds left of a wait, once a second, and says when it is over.

export class Notice {
  constructor(element) {
    this.element = element;
    this.message = null;
    this.timer = null;
    this.onEnd = null;
  }

  show(message) {
    this.stopCountdown();
    this.message = message;
    this.render();
  }

  // render(secondsLeft) makes the text; onEnd runs when the wait is over or the notice goes.
  countdown(seconds, render, onEnd) {
    this.stopCountdown();
    const until = Date.now() + seconds * 1000;
    const left = () => Math.max(0, Math.ceil((until - Date.now()) / 1000));
    this.message = () => render(left());
    this.onEnd = onEnd;
    this.render();
    this.timer = setInterval(() => {
      if (left() > 0) this.render();
      else this.hide();
    }, 250);
  }

  get counting() {
    return this.timer !== null;
  }

  render() {
    if (this.message == null) return;
    const text = typeof this.message === "function" ? this.message() : this.message;
    if (this.element.textContent !== text) this.element.textContent = text;
    this.element.hidden = false;
  }

  hide() {
    this.stopCountdown();
    this.message = null;
    this.element.hidden = true;
    this.element.textContent = "";
  }

  stopCountdown() {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    const onEnd = this.onEnd;
    this.onEnd = null;
    onEnd?.();
  }
}
