// A small Markdown renderer for untrusted model output.
//
// Safety comes from construction, not from filtering HTML: the parser turns text into a
// tree of plain objects, and renderMarkdown builds DOM nodes from that tree with
// createElement / createTextNode only, from a fixed list of tags and attributes.
// Raw HTML in the input is never parsed as HTML: `<script>` stays the text "<script>".

const ALLOWED_TAGS = new Set([
  "p", "br", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "code", "pre",
  "blockquote", "ul", "ol", "li", "hr", "a", "table", "thead", "tbody", "tr", "th", "td",
]);
const SAFE_URL = /^(https?:|mailto:)/i;

const el = (tag, children = [], attrs = {}) => ({ type: "element", tag, attrs, children });
const text = (value) => ({ type: "text", text: value });

// ---- inline ---------------------------------------------------------------------------

const INLINE_RULES = [
  // `code` (any number of backticks, CommonMark-style)
  { re: /(`+)([\s\S]*?[^`])\1(?!`)/y, make: (m) => el("code", [text(m[2].replace(/^ (.*) $/, "$1"))]) },
  // [label](url) — only http(s)/mailto links survive; anything else stays as text
  {
    re: /\[([^\]\n]+)\]\(\s*<?([^\s<>()]+)>?\s*\)/y,
    make: (m) => SAFE_URL.test(m[2])
      ? el("a", parseInline(m[1]), { href: m[2] })
      : null,
  },
  { re: /\*\*(?=\S)([\s\S]*?\S)\*\*/y, make: (m) => el("strong", parseInline(m[1])) },
  { re: /__(?=[^\s_])([\s\S]*?[^\s_])__(?![A-Za-z0-9_])/y, make: (m) => el("strong", parseInline(m[1])) },
  { re: /~~(?=\S)([\s\S]*?\S)~~/y, make: (m) => el("del", parseInline(m[1])) },
  { re: /\*(?=[^\s*])([\s\S]*?[^\s*])\*(?!\*)/y, make: (m) => el("em", parseInline(m[1])) },
  { re: /_(?=[^\s_])([\s\S]*?[^\s_])_(?![A-Za-z0-9_])/y, make: (m) => el("em", parseInline(m[1])) },
  // bare URLs become links too (common in model answers)
  { re: /https?:\/\/[^\s<>()"'`]*[^\s<>()"'`.,;:!?]/y, make: (m) => el("a", [text(m[0])], { href: m[0] }) },
];

export function parseInline(source) {
  const out = [];
  let buffer = "";
  const flush = () => {
    if (buffer) out.push(text(buffer));
    buffer = "";
  };
  let i = 0;
  outer: while (i < source.length) {
    const ch = source[i];
    if (ch === "\\" && i + 1 < source.length && /[\\`*_{}\[\]()#+\-.!~<>|]/.test(source[i + 1])) {
      buffer += source[i + 1];
      i += 2;
      continue;
    }
    if (ch === "\n") {
      flush();
      out.push(el("br"));
      i += 1;
      continue;
    }
    // A rule may only start at a word boundary for _ and at the usual markers otherwise.
    // Underscores inside words or runs (snake_case, __dunder__ names in code) are not emphasis.
    if ("`[*_~h".includes(ch) && !(ch === "_" && i > 0 && /[A-Za-z0-9_]/.test(source[i - 1]))) {
      for (const rule of INLINE_RULES) {
        rule.re.lastIndex = i; // sticky regexes match at i without copying the rest
        const m = rule.re.exec(source);
        if (!m) continue;
        const node = rule.make(m);
        if (!node) continue;
        flush();
        out.push(node);
        i += m[0].length;
        continue outer;
      }
    }
    buffer += ch;
    i += 1;
  }
  flush();
  return out;
}

// ---- blocks ---------------------------------------------------------------------------

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const BULLET = /^( {0,3})([-*+])[ \t]+(.*)$/;
const ORDERED = /^( {0,3})(\d{1,9})[.)][ \t]+(.*)$/;
const BLANK = /^[ \t]*$/;
const TABLE_RULE = /^ {0,3}\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

// Cells of a table row: "| a | b |" or "a | b"; "\|" is a literal bar.
function tableCells(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|") && !row.endsWith("\\|")) row = row.slice(0, -1);
  return row.split(/(?<!\\)\|/).map((cell) => cell.trim());
}

function startsTable(lines, i) {
  return lines[i].includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])
    && lines[i + 1].includes("-") && tableCells(lines[i]).length === tableCells(lines[i + 1]).length;
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line)
    || BULLET.test(line) || ORDERED.test(line);
}

export function parseMarkdown(source) {
  const lines = String(source ?? "").replace(/\r\n?/g, "\n").split("\n");
  return parseBlocks(lines);
}

function parseBlocks(lines) {
  const blocks = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (BLANK.test(line)) {
      i += 1;
      continue;
    }
    let m;
    if ((m = FENCE.exec(line))) {
      const fence = m[1];
      const lang = m[2];
      const body = [];
      i += 1;
      // An unclosed fence (a reply still streaming) runs to the end of the text.
      while (i < lines.length && !new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`).test(lines[i])) {
        body.push(lines[i]);
        i += 1;
      }
      i += 1;
      const codeAttrs = /^[A-Za-z0-9_+#.-]{1,32}$/.test(lang) ? { class: `language-${lang}` } : {};
      blocks.push(el("pre", [el("code", [text(body.join("\n"))], codeAttrs)]));
      continue;
    }
    if ((m = HEADING.exec(line))) {
      blocks.push(el(`h${m[1].length}`, parseInline(m[2] ?? "")));
      i += 1;
      continue;
    }
    if (startsTable(lines, i)) {
      const header = tableCells(line);
      const aligns = tableCells(lines[i + 1]).map((c) =>
        c.startsWith(":") && c.endsWith(":") ? "center" : c.endsWith(":") ? "right" : c.startsWith(":") ? "left" : "");
      i += 2;
      const rows = [];
      while (i < lines.length && !BLANK.test(lines[i]) && lines[i].includes("|")) {
        rows.push(tableCells(lines[i]));
        i += 1;
      }
      const cell = (tag, value, column) =>
        el(tag, parseInline(value ?? ""), aligns[column] ? { align: aligns[column] } : {});
      blocks.push(el("table", [
        el("thead", [el("tr", header.map((value, c) => cell("th", value, c)))]),
        el("tbody", rows.map((row) => el("tr", header.map((_, c) => cell("td", row[c], c))))),
      ]));
      continue;
    }
    if (RULE.test(line)) {
      blocks.push(el("hr"));
      i += 1;
      continue;
    }
    if (QUOTE.test(line)) {
      const inner = [];
      while (i < lines.length && (m = QUOTE.exec(lines[i]))) {
        inner.push(m[1]);
        i += 1;
      }
      blocks.push(el("blockquote", parseBlocks(inner)));
      continue;
    }
    if (BULLET.test(line) || ORDERED.test(line)) {
      const ordered = !BULLET.test(line);
      const marker = ordered ? ORDERED : BULLET;
      const items = [];
      let current = null;
      while (i < lines.length) {
        const l = lines[i];
        if ((m = marker.exec(l))) {
          current = [m[3]];
          items.push(current);
          i += 1;
        } else if (current && !BLANK.test(l) && (/^\s{2,}/.test(l) || !startsBlock(l))) {
          current.push(l.replace(/^\s{1,4}/, ""));
          i += 1;
        } else if (current && BLANK.test(l) && i + 1 < lines.length && marker.exec(lines[i + 1])) {
          i += 1; // a blank line between items keeps the list going
        } else {
          break;
        }
      }
      const attrs = {};
      if (ordered) {
        const first = Number(ORDERED.exec(line)[2]);
        if (first !== 1) attrs.start = String(first);
      }
      blocks.push(el(ordered ? "ol" : "ul", items.map((itemLines) => {
        const inner = parseBlocks(itemLines);
        // A one-paragraph item renders without the <p> wrapper.
        const children = inner.length === 1 && inner[0].tag === "p" ? inner[0].children : inner;
        return el("li", children);
      }), attrs));
      continue;
    }
    const para = [];
    while (i < lines.length && !BLANK.test(lines[i]) && (para.length === 0 || !startsBlock(lines[i]))) {
      para.push(lines[i]);
      i += 1;
    }
    blocks.push(el("p", parseInline(para.join("\n"))));
  }
  return blocks;
}

// ---- DOM ------------------------------------------------------------------------------

// Builds DOM nodes from the parsed tree. Only whitelisted tags and attributes are created;
// every piece of text goes in through createTextNode.
export function renderTree(nodes, doc = document) {
  const fragment = doc.createDocumentFragment();
  for (const node of nodes) fragment.appendChild(renderNode(node, doc));
  return fragment;
}

function renderNode(node, doc) {
  if (node.type === "text" || !ALLOWED_TAGS.has(node.tag)) {
    return doc.createTextNode(node.type === "text" ? node.text : "");
  }
  const element = doc.createElement(node.tag);
  if (node.tag === "a") {
    const href = node.attrs.href ?? "";
    if (SAFE_URL.test(href)) element.setAttribute("href", href);
    element.setAttribute("target", "_blank");
    element.setAttribute("rel", "noopener noreferrer nofollow");
  }
  if (node.tag === "code" && node.attrs.class?.startsWith("language-")) {
    element.className = node.attrs.class;
  }
  if ((node.tag === "th" || node.tag === "td") && ["left", "right", "center"].includes(node.attrs.align)) {
    element.style.textAlign = node.attrs.align;
  }
  if (node.tag === "ol" && /^\d+$/.test(node.attrs.start ?? "")) {
    element.setAttribute("start", node.attrs.start);
  }
  for (const child of node.children) element.appendChild(renderNode(child, doc));
  return element;
}

export function renderMarkdown(source, doc = document) {
  return renderTree(parseMarkdown(source), doc);
}
