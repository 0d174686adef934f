// The messages of the open conversation, with its title.
// Model output only ever enters the page through renderMarkdown (DOM nodes built from a
// whitelist) or textContent: never through innerHTML.

import { Status } from "./conversation.js";
import { renderMarkdown } from "./markdown.js";

export class MessageView {
  constructor({ title, messages, deleteButton }) {
    this.title = title;
    this.messages = messages;
    this.deleteButton = deleteButton;
    this.renderPending = new Set();
  }

  renderAll(conversation) {
    this.title.textContent = conversation.id ? conversation.title : "New chat";
    document.title = `${this.title.textContent} · llm-relay`;
    this.deleteButton.hidden = !conversation.id;
    this.messages.replaceChildren(...conversation.messages.map((m) => messageElement(m)));
    if (!conversation.messages.length) {
      const hint = document.createElement("p");
      hint.className = "empty-hint";
      hint.textContent = "Ask anything. Enter sends, Shift+Enter adds a new line.";
      this.messages.appendChild(hint);
    }
    this.scrollToEnd(true);
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
    if (message.status === Status.STREAMING) {
      const cursor = document.createElement("span");
      cursor.className = "cursor";
      cursor.setAttribute("aria-hidden", "true");
      body.appendChild(cursor);
    }
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
  if (message.status !== Status.STREAMING && message.content) {
    footer.appendChild(copyButton("Copy", "copy-reply", () => message.content));
  }
  return footer;
}

function replyState(message) {
  if (message.status === Status.STOPPED) return "Stopped";
  if (message.status === Status.ERROR) return `Error: ${message.error || "the reply failed"}`;
  if (message.finishReason === "length") return "Cut off at the length limit";
  if (message.finishReason === "content_filter") {
    return "Stopped by the content filter: the rest of this reply was withheld";
  }
  return "";
}

function addCodeCopyButton(pre) {
  const wrapper = document.createElement("div");
  wrapper.className = "code-block";
  pre.replaceWith(wrapper);
  wrapper.appendChild(copyButton("Copy code", "copy-code", () => pre.textContent));
  wrapper.appendChild(pre);
}

function copyButton(label, className, getText) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `copy ${className}`;
  button.textContent = label;
  button.addEventListener("click", async () => {
    const ok = await copyText(getText());
    button.textContent = ok ? "Copied" : "Copy failed";
    setTimeout(() => (button.textContent = label), 1500);
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
