// el(): the console's one way to build markup. Text goes in as text nodes (never parsed as HTML);
// "on*" props are listeners, a few props are set as properties, everything else as an attribute.
// No style attributes: the CSP (style-src 'self') would refuse them, and classes do the job.

const PROPERTIES = new Set(["value", "checked", "disabled", "hidden", "selected", "required", "type"]);

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = String(value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (PROPERTIES.has(name)) node[name] = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of [children].flat(Infinity)) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

// A message line (role=alert) that keeps its text as a function, so a language switch can redo it.
export class Message {
  constructor(element) {
    this.element = element;
    this.make = null;
  }

  show(make, kind = "error") {
    this.make = typeof make === "function" ? make : () => make;
    this.element.dataset.kind = kind;
    this.render();
  }

  render() {
    if (!this.make) return;
    this.element.textContent = this.make();
    this.element.hidden = false;
  }

  hide() {
    this.make = null;
    this.element.textContent = "";
    this.element.hidden = true;
  }
}
