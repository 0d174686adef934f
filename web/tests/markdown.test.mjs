// Unit tests of the Markdown parser (run: node --test web/tests/). The DOM side is covered
// by the browser tests; here we check the tree the DOM is built from.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseMarkdown, parseInline } from "../js/markdown.js";

const tags = (nodes) => nodes.map((n) => (n.type === "text" ? `#${n.text}` : n.tag));
const flatText = (nodes) => nodes.map((n) => (n.type === "text" ? n.text : flatText(n.children))).join("");

test("raw HTML stays text", () => {
  const tree = parseMarkdown('<img src=x onerror="alert(1)"> and <script>alert(2)</script>');
  assert.deepEqual(tags(tree), ["p"]);
  assert.deepEqual(tags(tree[0].children), ['#<img src=x onerror="alert(1)"> and <script>alert(2)</script>']);
});

test("javascript: links are not links", () => {
  const nodes = parseInline("[click](javascript:alert(1)) [ok](https://example.com/a)");
  assert.equal(nodes.filter((n) => n.tag === "a").length, 1);
  assert.equal(nodes.find((n) => n.tag === "a").attrs.href, "https://example.com/a");
  assert.match(flatText(nodes), /\[click\]\(javascript:alert\(1\)\)/);
});

test("fenced code keeps its text verbatim, even HTML", () => {
  const tree = parseMarkdown("before\n```html\n<b>x</b>\n  **not bold**\n```\nafter");
  assert.deepEqual(tags(tree), ["p", "pre", "p"]);
  const code = tree[1].children[0];
  assert.equal(code.attrs.class, "language-html");
  assert.equal(flatText(code.children), "<b>x</b>\n  **not bold**");
});

test("an unclosed fence (still streaming) is code to the end", () => {
  const tree = parseMarkdown("```py\nprint(1)\n");
  assert.deepEqual(tags(tree), ["pre"]);
  assert.equal(flatText(tree), "print(1)\n");
});

test("headings, lists, quotes, rules", () => {
  const tree = parseMarkdown("# Title\n\n- one\n- **two**\n\n3. three\n4. four\n\n> quoted\n\n---");
  assert.deepEqual(tags(tree), ["h1", "ul", "ol", "blockquote", "hr"]);
  assert.deepEqual(tags(tree[1].children[1].children), ["strong"]);
  assert.equal(tree[2].attrs.start, "3");
});

test("inline emphasis, code and line breaks", () => {
  const nodes = parseInline("a *b* __c__ `<d>` snake_case_name\nnext");
  assert.deepEqual(tags(nodes), ["#a ", "em", "# ", "strong", "# ", "code", "# snake_case_name", "br", "#next"]);
});

test("Chinese text passes through", () => {
  const tree = parseMarkdown("你好，**世界**！");
  assert.equal(flatText(tree), "你好，世界！");
});

test("underscores in identifiers are not emphasis", () => {
  const nodes = parseInline("window.__xss = 1; and window.__xss = 2; my_var_name");
  assert.deepEqual(tags(nodes), ["#window.__xss = 1; and window.__xss = 2; my_var_name"]);
  assert.deepEqual(tags(parseInline("_em_ and __strong__")), ["em", "# and ", "strong"]);
});

test("pipe tables with alignment, inline markup and escaped bars", () => {
  const tree = parseMarkdown("| Name | Score |\n|:-----|------:|\n| **Ann** | 9 |\n| a \\| b | 7 |\n\nafter");
  assert.deepEqual(tags(tree), ["table", "p"]);
  const [thead, tbody] = tree[0].children;
  assert.deepEqual(thead.children[0].children.map((c) => flatText(c.children)), ["Name", "Score"]);
  assert.equal(thead.children[0].children[1].attrs.align, "right");
  assert.equal(tbody.children.length, 2);
  assert.deepEqual(tags(tbody.children[0].children[0].children), ["strong"]);
  assert.equal(flatText(tbody.children[1].children[0].children), "a | b");
});

test("a rule under a line without bars is not a table", () => {
  assert.deepEqual(tags(parseMarkdown("Title\n---")), ["p", "hr"]);
});
