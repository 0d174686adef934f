// ChatUI: binds the markup in index.html to the gateway API and the Conversation model.
// Model output only ever enters the page through renderMarkdown (DOM nodes built from a
// whitelist) or textContent: never through innerHTML.

import { api, ApiError, explainError, explainStreamError } from "./api.js";
import { Conversation, Status } from "./conversation.js";
import { renderMarkdown } from "./markdown.js";
import { followReply } from "./reply-stream.js";

const $ = (id) => document.getElementById(id);

export class ChatUI {
  constructor() {
    this.conversation = new Conversation();
    this.stream = null; // { messageId, follower } while a reply is streaming
    this.stopRequested = false; // Stop pressed before the reply had an id
    this.sending = false; // a message is on its way to the gateway
    this.renderPending = new Set();
    this.elements = {
      loginView: $("login-view"),
      loginForm: $("login-form"),
      apiKey: $("api-key"),
      loginError: $("login-error"),
      appView: $("app-view"),
      sidebar: $("sidebar"),
      menuToggle: $("menu-toggle"),
      newChat: $("new-chat"),
      conversationList: $("conversation-list"),
      logout: $("logout"),
      title: $("conversation-title"),
      deleteConversation: $("delete-conversation"),
      messages: $("messages"),
      notice: $("notice"),
      composer: $("composer"),
      prompt: $("prompt"),
      send: $("send"),
      stop: $("stop"),
    };
  }

  async start() {
    this.bindEvents();
    try {
      await api.session();
      await this.showApp();
    } catch (error) {
      this.showLogin(error instanceof ApiError && error.status === 401 ? "" : explainError(error));
    }
  }

  bindEvents() {
    const e = this.elements;
    e.loginForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.login(e.apiKey.value.trim());
    });
    e.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    e.prompt.addEventListener("keydown", (event) => {
      // Enter sends, Shift+Enter is a newline; Enter that ends an IME composition
      // (Chinese, Japanese input) only confirms the characters.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        this.send();
      }
    });
    e.prompt.addEventListener("input", () => this.fitPrompt());
    e.stop.addEventListener("click", () => this.stop());
    e.newChat.addEventListener("click", () => this.openNewChat());
    e.logout.addEventListener("click", () => this.logout());
    e.deleteConversation.addEventListener("click", () => this.deleteCurrent());
    e.menuToggle.addEventListener("click", (event) => {
      event.stopPropagation();
      e.sidebar.classList.toggle("open");
    });
    // On a phone the list is a drawer: a tap on the chat closes it.
    e.messages.parentElement.addEventListener("click", () => e.sidebar.classList.remove("open"));
    window.addEventListener("hashchange", () => {
      const id = this.conversationIdFromHash();
      if (id && id !== this.conversation.id) this.openConversation(id);
    });
  }

  // ---- session ------------------------------------------------------------------------

  showLogin(message = "") {
    this.closeStream();
    this.elements.appView.hidden = true;
    this.elements.loginView.hidden = false;
    this.elements.loginError.textContent = message;
    this.elements.apiKey.focus();
  }

  async login(apiKey) {
    const e = this.elements;
    if (!apiKey) {
      e.loginError.textContent = "Enter an API key.";
      return;
    }
    e.loginError.textContent = "";
    try {
      await api.login(apiKey);
      e.apiKey.value = "";
      await this.showApp();
    } catch (error) {
      e.loginError.textContent = error instanceof ApiError && error.status === 401
        ? "That API key is not valid (or it is disabled)."
        : explainError(error);
    }
  }

  async logout() {
    try {
      await api.logout();
    } catch {
      // the cookie is gone or the gateway is down: either way show the login form
    }
    this.conversation = new Conversation();
    location.hash = "";
    this.showLogin();
  }

  async showApp() {
    // The chat shows only once its conversation is in place, so nothing typed meanwhile is lost.
    this.elements.loginView.hidden = true;
    const id = this.conversationIdFromHash();
    if (id) await this.openConversation(id);
    else this.openNewChat();
    if (!this.elements.loginView.hidden) return; // the session turned out to be gone
    this.elements.appView.hidden = false;
    this.elements.prompt.focus();
    await this.refreshConversationList();
  }

  // Any call may find the session expired: go back to the login form with the reason.
  handleFailure(error) {
    if (error instanceof ApiError && error.status === 401) {
      this.showLogin(explainError(error));
    } else {
      this.showNotice(explainError(error));
    }
  }

  // ---- conversations ------------------------------------------------------------------

  conversationIdFromHash() {
    const match = /^#\/c\/([A-Za-z0-9_-]+)$/.exec(location.hash);
    return match ? match[1] : null;
  }

  async refreshConversationList() {
    let list;
    try {
      list = await api.conversations();
    } catch (error) {
      this.handleFailure(error);
      return;
    }
    const ul = this.elements.conversationList;
    ul.replaceChildren();
    for (const item of list.conversations || []) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "conversation-link";
      button.dataset.conversationId = item.id;
      button.textContent = item.title || "New chat";
      button.title = item.title || "";
      if (item.id === this.conversation.id) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => {
        this.elements.sidebar.classList.remove("open");
        this.openConversation(item.id);
      });
      li.appendChild(button);
      ul.appendChild(li);
    }
  }

  openNewChat() {
    this.closeStream();
    this.conversation = new Conversation();
    if (location.hash) history.replaceState(null, "", location.pathname);
    this.elements.sidebar.classList.remove("open");
    this.hideNotice();
    this.renderAll();
    this.elements.prompt.focus();
  }

  async openConversation(id) {
    this.closeStream();
    this.hideNotice();
    let json;
    try {
      json = await api.conversation(id);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        this.openNewChat();
        this.showNotice(explainError(error));
      } else {
        this.handleFailure(error);
      }
      return;
    }
    this.conversation = Conversation.fromServer(json);
    if (location.hash !== `#/c/${id}`) location.hash = `/c/${id}`;
    this.markCurrentInList();
    const streaming = this.conversation.streamingReply();
    if (streaming && !streaming.followable) {
      this.renderAll();
      this.showNotice("A reply is still being written for another session (device or tab). Reload later to see it.");
    } else if (streaming) {
      // Opened (or reloaded) while the reply is still being generated: replay it from the
      // first event and follow it live.
      this.conversation.restartReply(streaming.id);
      this.renderAll();
      this.follow(streaming.id);
    } else {
      this.renderAll();
    }
  }

  async deleteCurrent() {
    const id = this.conversation.id;
    if (!id || !confirm("Delete this conversation?")) return;
    try {
      await api.deleteConversation(id);
    } catch (error) {
      this.handleFailure(error);
      return;
    }
    this.openNewChat();
    await this.refreshConversationList();
  }

  markCurrentInList() {
    for (const button of this.elements.conversationList.querySelectorAll("button")) {
      button.toggleAttribute("aria-current", button.dataset.conversationId === this.conversation.id);
    }
  }

  // ---- sending and streaming ----------------------------------------------------------

  async send() {
    const content = this.elements.prompt.value;
    if (!content.trim() || this.stream || this.sending) return;
    this.sending = true; // a second Enter while the POST is on its way must not send twice
    try {
      await this.sendContent(content);
    } finally {
      this.sending = false;
    }
  }

  async sendContent(content) {
    this.hideNotice();
    this.stopRequested = false;
    const conversation = this.conversation;
    const userMessage = conversation.addUserMessage(content);
    this.elements.prompt.value = "";
    this.fitPrompt();
    this.renderAll();
    this.setBusy(true);
    let answer;
    try {
      answer = await api.send(conversation.id, content);
    } catch (error) {
      this.stopRequested = false;
      conversation.dropLastUserMessage(userMessage);
      this.elements.prompt.value = content; // give the text back so nothing is lost
      this.renderAll();
      this.setBusy(false);
      this.handleFailure(error);
      return;
    }
    if (conversation !== this.conversation) return; // the user switched away meanwhile
    const isNew = !conversation.id;
    conversation.id = answer.conversationId;
    conversation.startReply(answer.messageId);
    if (isNew) {
      history.replaceState(null, "", `#/c/${answer.conversationId}`);
      this.refreshConversationList();
    }
    this.renderAll();
    this.follow(answer.messageId);
    if (this.stopRequested) {
      this.stopRequested = false;
      this.stop();
    }
  }

  follow(messageId) {
    this.closeStream();
    this.setBusy(true);
    const conversation = this.conversation;
    const follower = followReply(api.streamUrl(messageId), {
      onOpen: () => this.hideNotice(),
      onToken: (data) => {
        conversation.appendToken(messageId, data.text);
        this.scheduleRender(messageId);
      },
      onFinish: (data) => {
        conversation.finishReply(messageId, data.finish_reason);
        this.endStream(messageId);
      },
      onError: (data) => {
        conversation.failReply(messageId, explainStreamError(data));
        this.endStream(messageId);
      },
      onReconnecting: () => this.showNotice("Connection lost, reconnecting…"),
      onGone: () => this.reconcile(messageId),
    });
    this.stream = { messageId, follower };
  }

  // The stream ended without a finish event we saw (204, or the session ended): the
  // stored conversation says how the reply ended.
  async reconcile(messageId) {
    this.stream = null;
    this.setBusy(false);
    let json;
    try {
      json = await api.conversation(this.conversation.id);
    } catch (error) {
      this.handleFailure(error);
      return;
    }
    const stored = Conversation.fromServer(json);
    if (stored.find(messageId)?.status === Status.STREAMING) {
      this.showNotice("The reply could not be followed. Reload to try again.");
    } else {
      this.hideNotice();
    }
    this.conversation = stored;
    this.renderAll();
  }

  endStream(messageId) {
    if (this.stream?.messageId === messageId) this.stream = null;
    this.hideNotice();
    this.renderMessage(messageId);
    this.setBusy(false);
    this.refreshConversationList();
  }

  closeStream() {
    if (this.stream) this.stream.follower.close();
    this.stream = null;
    this.setBusy(false);
  }

  async stop() {
    if (!this.stream) {
      // Stop pressed while the message is still being sent: stop as soon as it has an id.
      this.stopRequested = true;
      this.elements.stop.disabled = true;
      return;
    }
    this.elements.stop.disabled = true;
    try {
      // The gateway stops the model and ends the stream with finish_reason "stopped".
      await api.cancel(this.stream.messageId);
    } catch (error) {
      this.elements.stop.disabled = false;
      this.handleFailure(error);
    }
  }

  setBusy(busy) {
    this.elements.send.hidden = busy;
    this.elements.stop.hidden = !busy;
    this.elements.stop.disabled = false;
    this.elements.composer.classList.toggle("busy", busy);
  }

  // ---- rendering ----------------------------------------------------------------------

  scheduleRender(messageId) {
    // Tokens can come faster than frames: render each message at most once a frame.
    if (this.renderPending.has(messageId)) return;
    this.renderPending.add(messageId);
    requestAnimationFrame(() => {
      this.renderPending.delete(messageId);
      this.renderMessage(messageId);
    });
  }

  renderAll() {
    const e = this.elements;
    e.title.textContent = this.conversation.id ? this.conversation.title : "New chat";
    document.title = `${e.title.textContent} · llm-relay`;
    e.deleteConversation.hidden = !this.conversation.id;
    e.messages.replaceChildren(...this.conversation.messages.map((m) => this.messageElement(m)));
    if (!this.conversation.messages.length) {
      const hint = document.createElement("p");
      hint.className = "empty-hint";
      hint.textContent = "Ask anything. Enter sends, Shift+Enter adds a new line.";
      e.messages.appendChild(hint);
    }
    this.scrollToEnd(true);
  }

  renderMessage(messageId) {
    const message = this.conversation.find(messageId);
    const old = this.elements.messages.querySelector(`[data-message-id="${CSS.escape(messageId)}"]`);
    if (!message || !old) return;
    const stick = this.isNearEnd();
    old.replaceWith(this.messageElement(message));
    this.scrollToEnd(stick);
  }

  messageElement(message) {
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
      for (const pre of body.querySelectorAll("pre")) this.addCodeCopyButton(pre);
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

    if (message.role === "assistant") {
      const footer = document.createElement("div");
      footer.className = "message-footer";
      const state = document.createElement("span");
      state.className = "message-state";
      if (message.status === Status.STOPPED) state.textContent = "Stopped";
      else if (message.status === Status.ERROR) state.textContent = `Error: ${message.error || "the reply failed"}`;
      else if (message.finishReason === "length") state.textContent = "Cut off at the length limit";
      else if (message.finishReason === "content_filter") {
        state.textContent = "Stopped by the content filter: the rest of this reply was withheld";
        state.classList.add("filtered");
      }
      footer.appendChild(state);
      if (message.status !== Status.STREAMING && message.content) {
        footer.appendChild(this.copyButton("Copy", "copy-reply", () => message.content));
      }
      article.appendChild(footer);
    }
    return article;
  }

  addCodeCopyButton(pre) {
    const wrapper = document.createElement("div");
    wrapper.className = "code-block";
    pre.replaceWith(wrapper);
    wrapper.appendChild(this.copyButton("Copy code", "copy-code", () => pre.textContent));
    wrapper.appendChild(pre);
  }

  copyButton(label, className, getText) {
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

  isNearEnd() {
    const m = this.elements.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }

  scrollToEnd(stick) {
    if (stick) this.elements.messages.scrollTop = this.elements.messages.scrollHeight;
  }

  fitPrompt() {
    const p = this.elements.prompt;
    p.style.height = "auto";
    p.style.height = `${Math.min(p.scrollHeight, 200)}px`;
  }

  showNotice(text) {
    this.elements.notice.textContent = text;
    this.elements.notice.hidden = false;
  }

  hideNotice() {
    this.elements.notice.hidden = true;
    this.elements.notice.textContent = "";
  }
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
