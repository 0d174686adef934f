// Unit tests of the page's strings and its title rule (run: node --test web/tests/).
import { test } from "node:test";
import assert from "node:assert/strict";
import { TABLES } from "../js/i18n.js";
import { assertTablesMatch } from "./tables.mjs";
import { titleFor } from "../js/conversation.js";

test("both languages have every string, with the same parameters", () => {
  assertTablesMatch(TABLES);
});

// BrowserChatService.title: String.strip(), Java's \s+ (ASCII) to one space, 60 code points, cut between words.
test("titles are the gateway's", () => {
  assert.equal(titleFor("  What is\n\tthe   capital?  "), "What is the capital?");
  assert.equal(titleFor("x".repeat(60)), "x".repeat(60));
  assert.equal(titleFor("x".repeat(61)), `${"x".repeat(59)}…`);
  assert.equal(titleFor("What is the capital of France and why did it become the capital in the first place"),
    "What is the capital of France and why did it become the…"); // between words
  assert.equal(titleFor(`${"a".repeat(30)} ${"b".repeat(28)} tail`), `${"a".repeat(30)} ${"b".repeat(28)}…`);
  assert.equal(titleFor(`ab ${"c".repeat(70)}`), `ab ${"c".repeat(56)}…`); // no space in the second half
  assert.equal(titleFor(`${"a".repeat(58)}😀😀😀`), `${"a".repeat(58)}😀…`); // code points, not halves
  assert.equal(titleFor("\u3000你好\u3000"), "你好"); // strip() removes the ideographic space
  assert.equal(titleFor("a\u3000\u3000b"), "a\u3000\u3000b"); // \s does not match it
  assert.equal(titleFor("\u00a0x"), "\u00a0x"); // nor is a no-break space stripped
});
