// Every string the chat page shows, in English and Chinese, and the one function that picks them:
// t(). How the language is chosen and static markup filled: language.js (shared with the console).

import { HTML_LANG, Language, languageFromBrowser } from "./language.js";

const en = {
  "app.name": "llm-relay",
  "page.loginTitle": "llm-relay chat",
  "page.title": "{title} · llm-relay",
  "language.name": "English",
  "language.switchTo": "切换到中文",
  "login.intro": "Sign in with an API key issued by your gateway administrator.",
  "login.apiKey": "API key",
  "login.submit": "Log in",
  "login.enterKey": "Enter an API key.",
  "login.invalidKey": "That API key is not valid (or it is disabled).",
  "sidebar.newChat": "+ New chat",
  "sidebar.conversations": "Conversations",
  "sidebar.logout": "Log out",
  "chat.newChat": "New chat",
  "chat.delete": "Delete",
  "chat.confirmDelete": "Delete this conversation?",
  "chat.emptyHint": "Ask anything. Enter sends, Shift+Enter adds a new line.",
  "chat.model": "Model",
  "chat.defaultModel": "Default model",
  "composer.placeholder": "Message (Enter to send, Shift+Enter for a new line)",
  "composer.label": "Message",
  "composer.send": "Send",
  "composer.stop": "Stop",
  "reply.copy": "Copy",
  "reply.copyCode": "Copy code",
  "reply.copied": "Copied",
  "reply.copyFailed": "Copy failed",
  "reply.stopped": "Stopped",
  "reply.error": "Error: {error}",
  "reply.failed": "the reply failed",
  "reply.length": "Cut off at the length limit",
  "reply.filtered": "Stopped by the content filter: the rest of this reply was withheld",
  "notice.otherSession": "A reply is still being written for another session (device or tab). Reload later to see it.",
  "notice.reconnecting": "Connection lost, reconnecting…",
  "notice.notFollowed": "The reply could not be followed. Reload to try again.",
  "error.network": "The gateway cannot be reached. Check your connection.",
  "error.unauthorized": "Not signed in, or the API key is not valid. Log in with a valid key.",
  "error.forbidden": "This API key may not do that.",
  "error.notFound": "That conversation or message no longer exists.",
  "error.modelNotFound": "That model is not offered (any more). Pick another one.",
  "error.rateLimited": "Rate limit reached for this API key.",
  "error.unavailable": "The model service is unavailable right now.",
  "error.modelFailed": "The model failed to answer.",
  "error.requestFailed": "Request failed",
  "error.withStatus": "{message} (HTTP {status}).",
  "error.tryAgainIn": "Try again in {seconds} s.",
  "error.tryAgainShortly": "Try again shortly.",
};

const zh = {
  "app.name": "llm-relay",
  "page.loginTitle": "llm-relay 聊天",
  "page.title": "{title} · llm-relay",
  "language.name": "中文",
  "language.switchTo": "Switch to English",
  "login.intro": "请使用网关管理员发放的 API 密钥登录。",
  "login.apiKey": "API 密钥",
  "login.submit": "登录",
  "login.enterKey": "请输入 API 密钥。",
  "login.invalidKey": "该 API 密钥无效（或已停用）。",
  "sidebar.newChat": "+ 新对话",
  "sidebar.conversations": "对话列表",
  "sidebar.logout": "退出登录",
  "chat.newChat": "新对话",
  "chat.delete": "删除",
  "chat.confirmDelete": "确定删除此对话？",
  "chat.emptyHint": "有什么问题都可以问。Enter 发送，Shift+Enter 换行。",
  "chat.model": "模型",
  "chat.defaultModel": "默认模型",
  "composer.placeholder": "输入消息（Enter 发送，Shift+Enter 换行）",
  "composer.label": "消息",
  "composer.send": "发送",
  "composer.stop": "停止",
  "reply.copy": "复制",
  "reply.copyCode": "复制代码",
  "reply.copied": "已复制",
  "reply.copyFailed": "复制失败",
  "reply.stopped": "已停止",
  "reply.error": "出错：{error}",
  "reply.failed": "回复失败",
  "reply.length": "已达到长度上限，回复被截断",
  "reply.filtered": "已被内容过滤器拦截：此回复的其余部分未显示",
  "notice.otherSession": "另一个会话（其他设备或标签页）正在接收这条回复，请稍后刷新查看。",
  "notice.reconnecting": "连接中断，正在重新连接…",
  "notice.notFollowed": "无法继续接收这条回复，请刷新页面重试。",
  "error.network": "无法连接到网关，请检查网络连接。",
  "error.unauthorized": "尚未登录，或 API 密钥无效。请使用有效的密钥登录。",
  "error.forbidden": "此 API 密钥无权执行该操作。",
  "error.notFound": "该对话或消息已不存在。",
  "error.modelNotFound": "该模型已不再提供，请另选一个。",
  "error.rateLimited": "此 API 密钥已达到速率限制。",
  "error.unavailable": "模型服务暂时不可用。",
  "error.modelFailed": "模型未能给出回答。",
  "error.requestFailed": "请求失败",
  "error.withStatus": "{message}（HTTP {status}）。",
  "error.tryAgainIn": "请在 {seconds} 秒后重试。",
  "error.tryAgainShortly": "请稍后重试。",
};

export const TABLES = Object.freeze({ en, zh });
export { HTML_LANG, languageFromBrowser };
// how the two parts of a sentence join: English puts a space between them, Chinese does not
const SEPARATOR = { en: " ", zh: "" };

export const language = new Language(TABLES);

export const t = (key, params) => language.t(key, params);
export const currentLanguage = () => language.current();
export const setLanguage = (next, options) => language.set(next, options);
export const onLanguageChange = (listener) => language.onChange(listener);
export const applyStatic = (root) => language.applyStatic(root);

// Sentences joined as the language writes them ("A. B." / "甲。乙。").
export function joinSentences(...parts) {
  return parts.filter(Boolean).join(SEPARATOR[language.current()]);
}
