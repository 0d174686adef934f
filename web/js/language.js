// One page's language, shared by the chat page and the console (each brings its own string tables):
// the user's switch wins (remembered in localStorage under one key, so both pages follow it), else
// the browser's languages (zh* → Chinese, else English). Static markup names its strings with
// data-i18n (text), data-i18n-placeholder, data-i18n-aria-label and data-i18n-title; applyStatic
// fills them in, at start and on every switch. Views that build text in code call t() when they
// render and re-render on onChange.

export const STORAGE_KEY = "llm-relay.language";
export const HTML_LANG = Object.freeze({ en: "en", zh: "zh-CN" });

const ATTRIBUTES = [
  ["data-i18n-placeholder", "placeholder"],
  ["data-i18n-aria-label", "aria-label"],
  ["data-i18n-title", "title"],
];

// The first of the browser's languages that the pages speak decides; English otherwise.
export function languageFromBrowser(languages = globalThis.navigator?.languages || [globalThis.navigator?.language]) {
  for (const tag of languages || []) {
    const primary = String(tag).toLowerCase().split("-")[0];
    if (primary === "zh") return "zh";
    if (primary === "en") return "en";
  }
  return "en";
}

export class Language {
  // tables: { en: {...}, zh: {...} }; titleKey: the string <title> shows (null: the markup's own)
  constructor(tables, { titleKey = null } = {}) {
    this.tables = tables;
    this.titleKey = titleKey;
    this.listeners = new Set();
    this.language = this.stored() || languageFromBrowser();
  }

  stored() {
    try {
      const value = globalThis.localStorage?.getItem(STORAGE_KEY);
      return value in this.tables ? value : null;
    } catch {
      return null; // storage disabled: fall back to the browser's languages
    }
  }

  current() {
    return this.language;
  }

  // The BCP 47 tag of the current language (<html lang>, Intl formats).
  locale() {
    return HTML_LANG[this.language];
  }

  // The string for key in the current language (English, else the key, when it has none), with
  // {name} replaced from params.
  t(key, params = {}) {
    const template = this.tables[this.language][key] ?? this.tables.en[key] ?? key;
    return template.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
  }

  set(next, { remember = true } = {}) {
    if (!(next in this.tables)) return;
    if (remember) {
      try {
        localStorage.setItem(STORAGE_KEY, next);
      } catch {
        // not remembered; still switch for this page
      }
    }
    if (next === this.language) return;
    this.language = next;
    this.applyStatic();
    for (const listener of this.listeners) listener(next);
  }

  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // Fills the static markup's strings, <html lang> (and the title, when the page has a key for it).
  applyStatic(root = document) {
    document.documentElement.lang = this.locale();
    if (this.titleKey) document.title = this.t(this.titleKey);
    for (const element of root.querySelectorAll("[data-i18n]")) {
      element.textContent = this.t(element.dataset.i18n);
    }
    for (const [data, attribute] of ATTRIBUTES) {
      for (const element of root.querySelectorAll(`[${data}]`)) {
        element.setAttribute(attribute, this.t(element.getAttribute(data)));
      }
    }
  }
}
