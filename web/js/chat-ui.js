// ChatUI: the page's controller. It binds the views (login form, conversation list, messages,
// model picker, composer, notice, language switch) to the gateway API and the Conversation
// model: it decides what happens, the views only show it. Every string comes from i18n.js.

import { api, ApiError, explainError, explainStreamError, retryAfterOf, retryAfterOfStream } from "./api.js";
import { Composer } from "./composer.js";
import { Conversation, Status } from "./conversation.js";
import { ConversationList } from "./conversation-list.js";
import { applyStatic, language, onLanguageChange, t } from "./i18n.js";
import { LanguageSwitch } from "./language-switch.js";
import { LoginView } from "./login-view.js";
import { MessageView } from "./message-view.js";
import { ModelPicker } from "./model-picker.js";
import { Notice } from "./notice.js";
import { followReply } from "./reply-stream.js";

const $ = (id) => document.getElementById(id);

export class ChatUI {
  constructor() {
    this.conversation = new Conversation();
    this.stream = null; // { messageId, follower } while a reply is streaming
    this.stopRequested = false; // Stop pressed before the reply had an id
    this.sending = false; // a message is on its way to the gateway
    this.retryWaiting = false; // the gateway's Retry-After wait is running: nothing is sent
    applyStatic();
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
    this.picker = new ModelPicker({ wrapper: $("model-picker"), select: $("model") });
    this.languageSwitch = new LanguageSwitch(document.querySelectorAll(".language-switch"), language);
    onLanguageChange(() => this.relabel());
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
      this.showLogin(error instanceof ApiError && error.status === 401 ? "" : () => explainError(error));
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
      this.login.showError(() => t("login.enterKey"));
      return;
    }
    this.login.showError("");
    try {
      await api.login(apiKey);
      this.login.clearKey();
      await this.showApp();
    } catch (error) {
      this.login.showError(error instanceof ApiError && error.status === 401
        ? () => t("login.invalidKey")
        : () => explainError(error));
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
    await this.loadModels();
    const id = conversationIdFromHash();
    if (id) await this.openConversation(id);
    else this.openNewChat();
    if (this.login.visible) return; // the session turned out to be gone
    this.appView.hidden = false;
    this.composer.focus();
    await this.refreshConversationList();
  }

  // Any call may find the session expired: go back to the login form with the reason.
  // A refusal with Retry-After counts the wait down, and sending waits for it.
  handleFailure(error) {
    if (error instanceof ApiError && error.status === 401) {
      this.showLogin(() => explainError(error));
      return;
    }
    const wait = retryAfterOf(error);
    if (wait) this.waitToRetry(wait, (secondsLeft) => explainError(error, secondsLeft));
    else this.notice.show(() => explainError(error));
  }

  waitToRetry(seconds, render) {
    this.retryWaiting = true;
    this.composer.waiting = true;
    this.notice.countdown(seconds, render, () => {
      this.retryWaiting = false;
      this.composer.waiting = false;
    });
  }

  // Opening a conversation clears the notice, but not a wait still running (it is the key's).
  clearNotice() {
    if (!this.notice.counting) this.notice.hide();
  }

  // Everything drawn in code, again in the language just picked (the markup is done by i18n).
  relabel() {
    this.view.renderAll(this.conversation);
    this.list.refresh();
    this.notice.render();
    this.login.refresh();
    this.picker.render();
    this.composer.fit();
  }

  // ---- models -------------------------------------------------------------------------

  // The models the gateway offers; a gateway without the route (404) or any failure just
  // hides the picker, and messages then name no model.
  async loadModels() {
    let answer = null;
    try {
      answer = await api.models();
    } catch {
      answer = null;
    }
    this.picker.load(answer);
  }

  showModelOf(conversation) {
    if (conversation.id) this.picker.value = conversation.model;
    else this.picker.showForNewChat();
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
    // the stored title is the one to show (the page's own guess only fills the wait for it)
    const stored = this.conversation.id && this.list.titleOf(this.conversation.id);
    if (stored && stored !== this.conversation.title) {
      this.conversation.title = stored;
      this.view.renderTitle(this.conversation);
    }
  }

  openNewChat() {
    this.closeStream();
    this.conversation = new Conversation();
    if (location.hash) history.replaceState(null, "", location.pathname);
    this.list.close();
    this.clearNotice();
    this.showModelOf(this.conversation);
    this.view.renderAll(this.conversation);
    this.composer.focus();
  }

  async openConversation(id) {
    this.closeStream();
    this.clearNotice();
    let json;
    try {
      json = await api.conversation(id);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        this.openNewChat();
        this.notice.show(() => explainError(error));
      } else {
        this.handleFailure(error);
      }
      return;
    }
    this.conversation = Conversation.fromServer(json);
    if (location.hash !== `#/c/${id}`) location.hash = `/c/${id}`;
    this.list.markCurrent(this.conversation.id);
    this.showModelOf(this.conversation);
    const streaming = this.conversation.streamingReply();
    if (streaming && !streaming.followable) {
      this.view.renderAll(this.conversation);
      this.notice.show(() => t("notice.otherSession"));
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
    if (!id || !confirm(t("chat.confirmDelete"))) return;
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
    if (!content.trim() || this.stream || this.sending || this.retryWaiting) return;
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
    const model = this.picker.value; // a different one switches the conversation to it
    const userMessage = conversation.addUserMessage(content);
    this.composer.text = "";
    this.view.renderAll(conversation);
    this.composer.setBusy(true);
    let answer;
    try {
      answer = await api.send(conversation.id, content, model);
    } catch (error) {
      this.stopRequested = false;
      conversation.dropLastUserMessage(userMessage);
      if (!conversation.messages.length) conversation.title = null;
      this.composer.setBusy(false); // first: Send and Stop differ in width, and so the box
      this.composer.text = content; // give the text back so nothing is lost (fitted to it)
      this.view.renderAll(conversation);
      this.handleFailure(error);
      if (error instanceof ApiError && error.code === "model_not_found") this.loadModels();
      return;
    }
    if (conversation !== this.conversation) return; // the user switched away meanwhile
    const isNew = !conversation.id;
    if (model) conversation.model = model;
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
        conversation.failReply(messageId, () => explainStreamError(data));
        this.endStream(messageId);
        const wait = retryAfterOfStream(data);
        if (wait) this.waitToRetry(wait, (seconds) => t("error.tryAgainIn", { seconds }));
      },
      onReconnecting: () => this.notice.show(() => t("notice.reconnecting")),
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
      this.notice.show(() => t("notice.notFollowed"));
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
