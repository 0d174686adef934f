// The 中文 / English toggle of a page (the chat page's login card and sidebar, the console's login card
// and top bar): each button names the other language in that language, and a click switches the whole
// page at once. `language` is the page's Language (language.js).

import { HTML_LANG } from "./language.js";

export class LanguageSwitch {
  constructor(buttons, language) {
    this.buttons = [...buttons];
    this.language = language;
    for (const button of this.buttons) {
      button.addEventListener("click", () => language.set(this.other()));
    }
    language.onChange(() => this.render());
    this.render();
  }

  other() {
    return this.language.current() === "zh" ? "en" : "zh";
  }

  render() {
    const other = this.other();
    const label = this.language.t("language.switchTo");
    for (const button of this.buttons) {
      button.textContent = this.language.tables[other]["language.name"];
      button.lang = HTML_LANG[other];
      button.setAttribute("aria-label", label);
      button.title = label;
    }
  }
}
