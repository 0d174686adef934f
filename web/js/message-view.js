// The messages of the open conversation, with its title.
// Model output only ever enters the page through renderMarkdown (DOM nodes built from a
// whitelist) or textContent: never through innerHTML.

import { Status } from "./conversation.js";
import { t } from "./i18n.js";
import { renderMarkdown } from "./markdown.js";

export class MessageView {
  constructor({ title, messages, deleteButton }) {
    this.title = title;
    this.messages = messages;
    this.deleteButton = deleteButton;
    this.renderPending = new Set();
  }

  renderAll(conversation) {
    this.renderTitle(conversation);
    this.deleteButton.hidden = !conversation.id;
    this.messages.replaceChildren(...conversation.messages.map((m) => messageElement(m)));
    if (!conversation.messages.length) {
      const hint = document.createElement("p");
      hint.className = "empty-hint";
      hint.textContent = t("chat.emptyHint");
      this.messages.appendChild(hint);
    }
    this.scrollToEnd(true);
  }

  // The server's title as it is: a header too narrow for it ellipsizes (CSS), the page never cuts it.
  renderTitle(conversation) {
    const title = (conversation.id || conversation.messages.length) && conversation.title
      ? conversation.title
      : t("chat.newChat");
    this.title.textContent = title;
    this.title.title = title;
    document.title = t("page.title", { title });
  }

  // Tokens can come faster than frames: render each message at most once a frame.
  scheduleRender(conversation, messageId) {
    if (this.renderPending.has(messageId)) return;
    this.renderPending.add(messageId);
    requestAnimationFrame(() => {
      this.renderPending.delete(messageId);
      this.renderMessage(conversation, messageId);
    });
  }

  renderMessage(conversation, messageId) {
    const message = conversation.find(messageId);
    const old = this.messages.querySelector(`[data-message-id="${CSS.escape(messageId)}"]`);
    if (!message || !old) return;
    const stick = this.isNearEnd();
    old.replaceWith(messageElement(message));
    this.scrollToEnd(stick);
  }

  isNearEnd() {
    const m = this.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }

  scrollToEnd(stick) {
    if (stick) this.messages.scrollTop = this.messages.scrollHeight;
  }
}

function messageElement(message) {
  const article = document.createElement("article");
  article.className = `message ${message.role}`;
  article.dataset.status = message.status;
  // screen readers wait for the finished reply instead of reading every token
  if (message.status === Status.STREAMING) article.setAttribute("aria-busy", "true");
  if (message.id) article.dataset.messageId = message.id;

  const body = document.createElement("div");
  body.className = "body";
  if (message.role === "assistant") {
    body.appendChild(renderMarkdown(message.content));
    for (const pre of body.querySelectorAll("pre")) addCodeCopyButton(pre);
    if (message.status === Status.STREAMING) placeCursor(body);
  } else {
    body.textContent = message.content; // user text is shown as typed
  }
  article.appendChild(body);
  if (message.role === "assistant") article.appendChild(replyFooter(message));
  return article;
}

function replyFooter(message) {
  const footer = document.createElement("div");
  footer.className = "message-footer";
  const state = document.createElement("span");
  state.className = "message-state";
  state.textContent = replyState(message);
  if (message.finishReason === "content_filter") state.classList.add("filtered");
  footer.appendChild(state);
  if (message.status === Status.STREAMING) {
    // the Copy button's room is kept while the reply streams, so the bubble does not grow at the end
    const room = copyButton("reply.copy", "copy-reply", () => "");
    room.classList.add("placeholder");
    room.disabled = true;
    room.tabIndex = -1;
    room.setAttribute("aria-hidden", "true");
    footer.appendChild(room);
  } else if (message.content) {
    footer.appendChild(copyButton("reply.copy", "copy-reply", () => message.content));
  }
  return footer;
}

// Blocks the cursor may go into: it ends the last line of text instead of opening a line of
// its own under a paragraph, list or code block (which made the bubble shrink when the reply
// ended). Inline elements (strong, a, inline code) are not entered: the cursor follows them.
const CURSOR_HOSTS = new Set(["P", "H1", "H2", "H3", "H4", "H5", "H6", "UL", "OL", "LI", "BLOCKQUOTE",
  "DIV", "PRE", "TABLE", "THEAD", "TBODY", "TR", "TH", "TD"]);

function placeCursor(body) {
  const cursor = document.createElement("span");
  cursor.className = "cursor";
  cursor.setAttribute("aria-hidden", "true");
  let host = body;
  for (;;) {
    let last = host.lastChild;
    while (last && last.nodeType === Node.TEXT_NODE && !last.textContent.trim()) last = last.previousSibling;
    const enter = last && last.nodeType === Node.ELEMENT_NODE
      && (CURSOR_HOSTS.has(last.tagName) || (last.tagName === "CODE" && host.tagName === "PRE"));
    if (!enter) break;
    host = last;
  }
  // code streaming in ends with the newline before its next line: the cursor goes before it
  const tail = host.lastChild;
  if (host.tagName === "CODE" && tail?.nodeType === Node.TEXT_NODE && tail.textContent.endsWith("\n")) {
    host.insertBefore(cursor, tail.splitText(tail.textContent.length - 1));
  } else {
    host.appendChild(cursor);
  }
}

function replyState(message) {
  if (message.status === Status.STOPPED) return t("reply.stopped");
  if (message.status === Status.ERROR) {
    // the gateway's stored text, or the page's own explanation (a function: in the current language)
    const error = typeof message.error === "function" ? message.error() : message.error;
    return t("reply.error", { error: error || t("reply.failed") });
  }
  if (message.finishReason === "length") return t("reply.length");
  if (message.finishReason === "content_filter") return t("reply.filtered");
  return "";
}

function addCodeCopyButton(pre) {
  const wrapper = document.createElement("div");
  wrapper.className = "code-block";
  pre.replaceWith(wrapper);
  wrapper.appendChild(copyButton("reply.copyCode", "copy-code", () => pre.textContent));
  wrapper.appendChild(pre);
}

function copyButton(labelKey, className, getText) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `copy ${className}`;
  button.textContent = t(labelKey);
  button.addEventListener("click", async () => {
    const ok = await copyText(getText());
    button.textContent = t(ok ? "reply.copied" : "reply.copyFailed");
    setTimeout(() => (button.textContent = t(labelKey)), 1500);
  });
  return button;
}

// navigator.clipboard needs a secure context (https or localhost); a page opened over
// plain http from another machine falls back to the older copy command.
async function copyText(value) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(value);
      return true;
    }
  } catch {
    // fall through to the fallback
  }
  const area = document.createElement("textarea");
  area.value = value;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}
