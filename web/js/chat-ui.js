// ChatUI: the page's controller. It binds the views (login form, conversation list, messages,
// composer, notice) to the gateway API and the Conversation model: it decides what happens,
// the views only show it.

import { api, ApiError, explainError, explainStreamError } from "./api.js";
import { Composer } from "./composer.js";
import { Conversation, Status } from "./conversation.js";
import { ConversationList } from "./conversation-list.js";
import { LoginView } from "./login-view.js";
import { MessageView } from "./message-view.js";
import { Notice } from "./notice.js";
import { followReply } from "./reply-stream.js";

const $ = (id) => document.getElementById(id);

export class ChatUI {
  constructor() {
    this.conversation = new Conversation();
    this.stream = null; // { messageId, follower } while a reply is streaming
    this.stopRequested = false; // Stop pressed before the reply had an id
    this.sending = false; // a message is on its way to the gateway
    this.appView = $("app-view");
    this.login = new LoginView(
      { view: $("login-view"), form: $("login-form"), apiKey: $("api-key"), error: $("login-error") },
      { onLogin: (apiKey) => this.logIn(apiKey) },
    );
    this.list = new ConversationList(
      { sidebar: $("sidebar"), list: $("conversation-list"), menuToggle: $("menu-toggle"),
        chatArea: $("messages").parentElement },
      { onOpen: (id) => this.openConversation(id) },
    );
    this.view = new MessageView(
      { title: $("conversation-title"), messages: $("messages"), deleteButton: $("delete-conversation") },
    );
    this.composer = new Composer(
      { form: $("composer"), prompt: $("prompt"), send: $("send"), stop: $("stop") },
      { onSend: () => this.send(), onStop: () => this.stop() },
    );
    this.notice = new Notice($("notice"));
    $("new-chat").addEventListener("click", () => this.openNewChat());
    $("logout").addEventListener("click", () => this.logout());
    $("delete-conversation").addEventListener("click", () => this.deleteCurrent());
    window.addEventListener("hashchange", () => {
      const id = conversationIdFromHash();
      if (id && id !== this.conversation.id) this.openConversation(id);
    });
  }

  async start() {
    try {
      await api.session();
      await this.showApp();
    } catch (error) {
      this.showLogin(error instanceof ApiError && error.status === 401 ? "" : explainError(error));
    }
  }

  // ---- session ------------------------------------------------------------------------

  showLogin(message = "") {
    this.closeStream();
    this.appView.hidden = true;
    this.login.show(message);
  }

  async logIn(apiKey) {
    if (!apiKey) {
      this.login.showError("Enter an API key.");
      return;
    }
    this.login.showError("");
    try {
      await api.login(apiKey);
      this.login.clearKey();
      await this.showApp();
    } catch (error) {
      this.login.showError(error instanceof ApiError && error.status === 401
        ? "That API key is not valid (or it is disabled)."
        : explainError(error));
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
    this.login.hide();
    const id = conversationIdFromHash();
    if (id) await this.openConversation(id);
    else this.openNewChat();
    if (this.login.visible) return; // the session turned out to be gone
    this.appView.hidden = false;
    this.composer.focus();
    await this.refreshConversationList();
  }

  // Any call may find the session expired: go back to the login form with the reason.
  handleFailure(error) {
    if (error instanceof ApiError && error.status === 401) {
      this.showLogin(explainError(error));
    } else {
      this.notice.show(explainError(error));
    }
  }

  // ---- conversations ------------------------------------------------------------------

  async refreshConversationList() {
    let list;
    try {
      list = await api.conversations();
    } catch (error) {
      this.handleFailure(error);
      return;
    }
    this.list.render(list.conversations || [], this.conversation.id);
  }

  openNewChat() {
    this.closeStream();
    this.conversation = new Conversation();
    if (location.hash) history.replaceState(null, "", location.pathname);
    this.list.close();
    this.notice.hide();
    this.view.renderAll(this.conversation);
    this.composer.focus();
  }

  async openConversation(id) {
    this.closeStream();
    this.notice.hide();
    let json;
    try {
      json = await api.conversation(id);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        this.openNewChat();
        this.notice.show(explainError(error));
      } else {
        this.handleFailure(error);
      }
      return;
    }
    this.conversation = Conversation.fromServer(json);
    if (location.hash !== `#/c/${id}`) location.hash = `/c/${id}`;
    this.list.markCurrent(this.conversation.id);
    const streaming = this.conversation.streamingReply();
    if (streaming && !streaming.followable) {
      this.view.renderAll(this.conversation);
      this.notice.show("A reply is still being written for another session (device or tab). Reload later to see it.");
    } else if (streaming) {
      // Opened (or reloaded) while the reply is still being generated: replay it from the
      // first event and follow it live.
      this.conversation.restartReply(streaming.id);
      this.view.renderAll(this.conversation);
      this.follow(streaming.id);
    } else {
      this.view.renderAll(this.conversation);
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

  // ---- sending and streaming ----------------------------------------------------------

  async send() {
    const content = this.composer.text;
    if (!content.trim() || this.stream || this.sending) return;
    this.sending = true; // a second Enter while the POST is on its way must not send twice
    try {
      await this.sendContent(content);
    } finally {
      this.sending = false;
    }
  }

  async sendContent(content) {
    this.notice.hide();
    this.stopRequested = false;
    const conversation = this.conversation;
    const userMessage = conversation.addUserMessage(content);
    this.composer.text = "";
    this.view.renderAll(conversation);
    this.composer.setBusy(true);
    let answer;
    try {
      answer = await api.send(conversation.id, content);
    } catch (error) {
      this.stopRequested = false;
      conversation.dropLastUserMessage(userMessage);
      this.composer.text = content; // give the text back so nothing is lost
      this.view.renderAll(conversation);
      this.composer.setBusy(false);
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
    this.view.renderAll(conversation);
    this.follow(answer.messageId);
    if (this.stopRequested) {
      this.stopRequested = false;
      this.stop();
    }
  }

  follow(messageId) {
    this.closeStream();
    this.composer.setBusy(true);
    const conversation = this.conversation;
    const follower = followReply(api.streamUrl(messageId), {
      onOpen: () => this.notice.hide(),
      onToken: (data) => {
        conversation.appendToken(messageId, data.text);
        this.view.scheduleRender(conversation, messageId);
      },
      onFinish: (data) => {
        conversation.finishReply(messageId, data.finish_reason);
        this.endStream(messageId);
      },
      onError: (data) => {
        conversation.failReply(messageId, explainStreamError(data));
        this.endStream(messageId);
      },
      onReconnecting: () => this.notice.show("Connection lost, reconnecting…"),
      onGone: () => this.reconcile(messageId),
    });
    this.stream = { messageId, follower };
  }

  // The stream ended without a finish event we saw (204, or the session ended): the
  // stored conversation says how the reply ended.
  async reconcile(messageId) {
    this.stream = null;
    this.composer.setBusy(false);
    let json;
    try {
      json = await api.conversation(this.conversation.id);
    } catch (error) {
      this.handleFailure(error);
      return;
    }
    const stored = Conversation.fromServer(json);
    if (stored.find(messageId)?.status === Status.STREAMING) {
      this.notice.show("The reply could not be followed. Reload to try again.");
    } else {
      this.notice.hide();
    }
    this.conversation = stored;
    this.view.renderAll(stored);
  }

  endStream(messageId) {
    if (this.stream?.messageId === messageId) this.stream = null;
    this.notice.hide();
    this.view.renderMessage(this.conversation, messageId);
    this.composer.setBusy(false);
    this.refreshConversationList();
  }

  closeStream() {
    if (this.stream) this.stream.follower.close();
    this.stream = null;
    this.composer.setBusy(false);
  }

  async stop() {
    this.composer.stopEnabled = false;
    if (!this.stream) {
      // Stop pressed while the message is still being sent: stop as soon as it has an id.
      this.stopRequested = true;
      return;
    }
    try {
      // The gateway stops the model and ends the stream with finish_reason "stopped".
      await api.cancel(this.stream.messageId);
    } catch (error) {
      this.composer.stopEnabled = true;
      this.handleFailure(error);
    }
  }
}

function conversationIdFromHash() {
  const match = /^#\/c\/([A-Za-z0-9_-]+)$/.exec(location.hash);
  return match ? match[1] : null;
}
