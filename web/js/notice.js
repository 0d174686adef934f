// The one-line notice above the composer (connection trouble, refusals, errors).

export class Notice {
  constructor(element) {
    this.element = element;
  }

  show(text) {
    this.element.textContent = text;
    this.element.hidden = false;
  }

  hide() {
    this.element.hidden = true;
    this.element.textContent = "";
  }
}
