// The conversation model: the messages of one chat and how a streamed reply changes them.
// It knows nothing about the DOM; ChatUI renders it.

export const Status = Object.freeze({
  COMPLETE: "complete",
  STREAMING: "streaming",
  STOPPED: "stopped",
  ERROR: "error",
});

export class Conversation {
  constructor(id = null, title = "New chat", messages = []) {
    this.id = id;
    this.title = title;
    this.messages = messages;
  }

  // From GET /api/chat/conversations/{id}.
  static fromServer(json) {
    const messages = (json.messages || []).map((m) => ({
      id: m.id,
      role: m.role,
      content: m.content || "",
      status: m.status || Status.COMPLETE,
      finishReason: m.finishReason || null,
      error: m.error || null,
      followable: m.followable !== false, // false: another session is receiving this reply
    }));
    return new Conversation(json.id, json.title || "New chat", messages);
  }

  find(messageId) {
    return this.messages.find((m) => m.id === messageId);
  }

  // The reply still being generated, if any (only one at a time per conversation).
  streamingReply() {
    return this.messages.find((m) => m.role === "assistant" && m.status === Status.STREAMING) || null;
  }

  addUserMessage(content) {
    const message = { id: null, role: "user", content, status: Status.COMPLETE, finishReason: null, error: null };
    this.messages.push(message);
    if (this.messages.length === 1) this.title = content.slice(0, 60);
    return message;
  }

  startReply(messageId) {
    const reply = { id: messageId, role: "assistant", content: "", status: Status.STREAMING, finishReason: null, error: null };
    this.messages.push(reply);
    return reply;
  }

  // A stream replayed from its first event starts the text again from nothing.
  restartReply(messageId) {
    const reply = this.find(messageId);
    if (reply) reply.content = "";
    return reply;
  }

  appendToken(messageId, text) {
    const reply = this.find(messageId);
    if (reply) reply.content += text;
    return reply;
  }

  finishReply(messageId, finishReason) {
    const reply = this.find(messageId);
    if (!reply) return null;
    reply.finishReason = finishReason;
    reply.status = finishReason === "stopped" || finishReason === "cancelled" ? Status.STOPPED : Status.COMPLETE;
    return reply;
  }

  failReply(messageId, message) {
    const reply = this.find(messageId);
    if (!reply) return null;
    reply.status = Status.ERROR;
    reply.error = message;
    return reply;
  }

  // A user message the gateway refused (429, 503...) is taken back out of the view.
  dropLastUserMessage(message) {
    const index = this.messages.lastIndexOf(message);
    if (index >= 0) this.messages.splice(index, 1);
  }
}
