// The conversation model: the messages of one chat and how a streamed reply changes them.
// It knows nothing about the DOM; ChatUI renders it.

export const Status = Object.freeze({
  COMPLETE: "complete",
  STREAMING: "streaming",
  STOPPED: "stopped",
  ERROR: "error",
});

const TITLE_CODE_POINTS = 60;
// Java's Character.isWhitespace (what String.strip removes): not the no-break spaces
const JAVA_WHITESPACE = /^(?![\u00a0\u2007\u202f])[\t-\r\x1c-\x1f\p{Zs}\p{Zl}\p{Zp}]$/u;

// The title the gateway stores for a conversation (BrowserChatService.title): the first message
// on one line, at most 60 code points, cut with "…". The page shows it as it is (never cutting it
// itself), so a new chat's header is the same before and after a reload.
export function titleFor(content) {
  const points = [...content];
  let start = 0;
  let end = points.length;
  while (start < end && JAVA_WHITESPACE.test(points[start])) start += 1;
  while (end > start && JAVA_WHITESPACE.test(points[end - 1])) end -= 1;
  // Java's \s is ASCII whitespace only
  const oneLine = [...points.slice(start, end).join("").replace(/[ \t\n\x0b\f\r]+/g, " ")];
  if (oneLine.length <= TITLE_CODE_POINTS) return oneLine.join("");
  // between words when the cut falls inside one and a space in the second half allows (CJK: anywhere)
  let head = oneLine.slice(0, TITLE_CODE_POINTS - 1);
  const space = head.lastIndexOf(" ");
  if (oneLine[head.length] !== " " && space >= Math.floor((TITLE_CODE_POINTS - 1) / 2)) head = head.slice(0, space);
  return `${head.join("")}…`;
}

export class Conversation {
  // title null: not titled yet (a new chat); model null: the gateway's default model
  constructor(id = null, title = null, messages = [], model = null) {
    this.id = id;
    this.title = title;
    this.messages = messages;
    this.model = model;
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
    return new Conversation(json.id, json.title || null, messages, json.model || null);
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
    if (this.messages.length === 1) this.title = titleFor(content);
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
