// Unit tests of the pages' shared language choice (web/js/language.js; run: node --test web/tests/).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Language, languageFromBrowser } from "../js/language.js";

const TABLES = { en: { greet: "Hello {name}", only: "English only" }, zh: { greet: "你好 {name}" } };

test("zh* browsers get Chinese, everything else English", () => {
  assert.equal(languageFromBrowser(["zh-CN", "en-US"]), "zh");
  assert.equal(languageFromBrowser(["zh-Hant-TW"]), "zh");
  assert.equal(languageFromBrowser(["de-DE", "zh"]), "zh"); // the first the pages speak
  assert.equal(languageFromBrowser(["en-GB", "zh-CN"]), "en");
  assert.equal(languageFromBrowser(["fr"]), "en");
  assert.equal(languageFromBrowser([]), "en");
});

test("t() fills parameters, falls back to English, then to the key", () => {
  const language = new Language(TABLES);
  language.language = "zh";
  assert.equal(language.t("greet", { name: "李" }), "你好 李");
  assert.equal(language.t("only"), "English only");
  assert.equal(language.t("missing"), "missing");
  assert.equal(language.t("greet"), "你好 {name}"); // an unfilled parameter stays visible
  assert.equal(language.locale(), "zh-CN");
});

test("a switch tells its listeners once, and an unknown language changes nothing", () => {
  const language = new Language(TABLES);
  language.language = "en";
  language.applyStatic = () => {}; // no document here
  const heard = [];
  const stop = language.onChange((next) => heard.push(next));
  language.set("zh", { remember: false });
  language.set("zh", { remember: false });
  language.set("fr", { remember: false });
  stop();
  language.set("en", { remember: false });
  assert.deepEqual(heard, ["zh"]);
  assert.equal(language.current(), "en");
});
