// The message box with its Send and Stop buttons.

export class Composer {
  constructor({ form, prompt, send, stop }, { onSend, onStop }) {
    this.form = form;
    this.prompt = prompt;
    this.sendButton = send;
    this.stopButton = stop;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      onSend();
    });
    prompt.addEventListener("keydown", (event) => {
      // Enter sends, Shift+Enter is a newline; Enter that ends an IME composition
      // (Chinese, Japanese input) only confirms the characters.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        onSend();
      }
    });
    prompt.addEventListener("input", () => this.fit());
    stop.addEventListener("click", () => onStop());
  }

  get text() {
    return this.prompt.value;
  }

  set text(value) {
    this.prompt.value = value;
    this.fit();
  }

  focus() {
    this.prompt.focus();
  }

  // The box grows with its text up to a limit, then scrolls. Its height counts the borders
  // (box-sizing: border-box) and scrollHeight does not: without them the last line was clipped.
  fit() {
    const prompt = this.prompt;
    prompt.style.height = "auto";
    const borders = prompt.offsetHeight - prompt.clientHeight;
    prompt.style.height = `${Math.min(prompt.scrollHeight + borders, 200)}px`;
  }

  setBusy(busy) {
    this.sendButton.hidden = busy;
    this.stopButton.hidden = !busy;
    this.stopButton.disabled = false;
    this.form.classList.toggle("busy", busy);
  }

  set stopEnabled(enabled) {
    this.stopButton.disabled = !enabled;
  }

  // While the gateway's Retry-After wait runs, Send is off (Enter too: ChatUI checks it).
  set waiting(waiting) {
    this.sendButton.disabled = waiting;
  }
}
