// The 中文 / English toggle (one on the login card, one in the top bar): each button names the other
// language in that language, and a click switches the whole console at once.

import { HTML_LANG, TABLES, currentLanguage, onLanguageChange, setLanguage, t } from "./i18n.js";

export class LanguageSwitch {
  constructor(buttons) {
    this.buttons = [...buttons];
    for (const button of this.buttons) button.addEventListener("click", () => setLanguage(this.other()));
    onLanguageChange(() => this.render());
    this.render();
  }

  other() {
    return currentLanguage() === "zh" ? "en" : "zh";
  }

  render() {
    const other = this.other();
    for (const button of this.buttons) {
      button.textContent = TABLES[other]["language.name"];
      button.lang = HTML_LANG[other];
      button.setAttribute("aria-label", t("language.switchTo"));
      button.title = t("language.switchTo");
    }
  }
}
