// Every string the operator console shows, in English and Chinese, and the one function that picks
// them: t(). The same approach as the chat page's web/js/i18n.js (kept apart so the two pages can change
// independently): the user's switch (remembered in localStorage, shared with the chat page) wins, else
// the browser's languages (zh* → Chinese, else English). Static markup names its strings with
// data-i18n, data-i18n-placeholder, data-i18n-aria-label and data-i18n-title; views that build text in
// code call t() when they render and re-render on onLanguageChange.

const STORAGE_KEY = "llm-relay.language";

const en = {
  "app.name": "llm-relay console",
  "page.title": "llm-relay console",
  "language.name": "English",
  "language.switchTo": "切换到中文",
  "login.intro": "Operator console. Sign in with the gateway's admin token (GATEWAY_ADMIN_TOKEN).",
  "login.token": "Admin token",
  "login.submit": "Log in",
  "login.enterToken": "Enter the admin token.",
  "login.invalidToken": "That admin token is not valid.",
  "login.unavailable": "This gateway has no console sign-in (HTTP {status}). Is the gateway up to date?",
  "nav.label": "Sections",
  "nav.keys": "API keys",
  "nav.usage": "Usage",
  "nav.upstreams": "Upstreams",
  "nav.controls": "Controls",
  "nav.logout": "Log out",
  "common.refresh": "Refresh",
  "common.loading": "Loading…",
  "common.none": "—",
  "common.cancel": "Cancel",
  "common.save": "Save",
  "common.yes": "yes",
  "common.no": "no",
  "common.unlimited": "unlimited",
  "keys.title": "API keys",
  "keys.new": "New key",
  "keys.empty": "No API keys yet.",
  "keys.col.name": "Name",
  "keys.col.prefix": "Prefix",
  "keys.col.limits": "Limits",
  "keys.col.budget": "Budget",
  "keys.col.status": "Status",
  "keys.col.lastUsed": "Last used",
  "keys.col.actions": "Actions",
  "keys.limits": "{rpm} req/min · {tpm} tokens/min · {streams} streams",
  "keys.enabled": "enabled",
  "keys.disabled": "disabled",
  "keys.never": "never",
  "keys.edit": "Edit",
  "keys.enable": "Enable",
  "keys.disable": "Disable",
  "keys.delete": "Delete",
  "keys.confirmDelete": "Delete the key “{name}”? Clients using it stop working.",
  "keys.confirmDeleteYes": "Delete key",
  "keys.deleted": "Key “{name}” deleted.",
  "keys.saved": "Key “{name}” saved.",
  "keys.noBudget": "no budget",
  "keys.budgetUsed": "{used} of {tokens} tokens used ({period})",
  "keys.budgetRemaining": "{remaining} left",
  "keys.budgetResets": "resets {when}",
  "keys.budgetNeverResets": "never resets",
  "period.day": "per day",
  "period.month": "per month",
  "period.total": "in total",
  "form.createTitle": "New API key",
  "form.editTitle": "Edit key “{name}”",
  "form.name": "Name",
  "form.rpm": "Requests per minute",
  "form.tpm": "Tokens per minute",
  "form.streams": "Concurrent streams",
  "form.defaultHint": "empty: the gateway's default",
  "form.enabled": "Enabled",
  "form.budget": "Token budget",
  "form.budgetTokens": "Budget (tokens)",
  "form.budgetPeriod": "Period",
  "form.budgetNone": "no budget",
  "form.budgetDay": "per UTC day",
  "form.budgetMonth": "per UTC month",
  "form.budgetTotal": "in total",
  "form.create": "Create key",
  "form.needName": "Give the key a name.",
  "form.needPositive": "{field} must be a whole number of at least 1.",
  "form.needBudget": "A budget needs a number of tokens of at least 1.",
  "created.title": "Key “{name}” created",
  "created.once": "Copy this key now: it is shown only once and cannot be shown again.",
  "created.copy": "Copy",
  "created.copied": "Copied",
  "created.copyFailed": "Copy failed: select the key and copy it by hand.",
  "created.done": "I have saved it",
  "usage.title": "Usage",
  "usage.range": "Range",
  "usage.range24h": "Last 24 hours (hourly)",
  "usage.range7d": "Last 7 days (daily)",
  "usage.range30d": "Last 30 days (daily)",
  "usage.by": "Split by",
  "usage.byKey": "API key",
  "usage.byModel": "Model",
  "usage.totals": "{requests} requests · {tokens} tokens · {errors} errors",
  "usage.empty": "No traffic in this range.",
  "usage.chart.requests": "Requests",
  "usage.chart.tokens": "Tokens (prompt + completion)",
  "usage.chart.errors": "Errors",
  "usage.chart.ttft": "Time to first token, p50 / p95 (ms)",
  "usage.noKey": "no key",
  "usage.noModel": "no model",
  "usage.table": "The numbers behind the charts",
  "usage.col.start": "Start",
  "usage.col.group": "Key / model",
  "usage.col.requests": "Requests",
  "usage.col.prompt": "Prompt tokens",
  "usage.col.completion": "Completion tokens",
  "usage.col.errors": "Errors",
  "usage.col.ttft": "TTFT p50 / p95 (ms)",
  "usage.col.cost": "Cost",
  "usage.truncated": "Showing the first {count} groups only.",
  "upstreams.title": "Upstream replicas",
  "upstreams.empty": "No upstreams configured.",
  "upstreams.col.name": "Replica",
  "upstreams.col.model": "Model",
  "upstreams.col.health": "Health",
  "upstreams.col.breaker": "Breaker",
  "upstreams.col.inFlight": "In flight",
  "upstreams.col.waiting": "Waiting",
  "upstreams.col.running": "Running",
  "upstreams.healthy": "healthy",
  "upstreams.unhealthy": "unhealthy",
  "upstreams.anyModel": "any (default pool)",
  "upstreams.updated": "Updated {when}",
  "controls.title": "Operator controls",
  "controls.policyVersion": "Policy version {version}",
  "controls.degradation": "Degradation",
  "controls.refuseNew": "Refuse new browser conversations",
  "controls.refuseNewHint": "Existing conversations go on; /v1 is not affected.",
  "controls.refusing": "Refusing: {message}",
  "controls.cap": "Cap max_tokens for every request",
  "controls.capValue": "Cap (tokens)",
  "controls.capApply": "Apply cap",
  "controls.capLift": "Lift cap",
  "controls.capNone": "no cap",
  "controls.capCurrent": "Current cap: {value}",
  "controls.capInvalid": "The cap must be a whole number from 1 to 1000000.",
  "controls.pools": "Pools",
  "controls.col.pool": "Pool",
  "controls.col.paused": "Paused",
  "controls.col.limit": "Limit",
  "controls.col.inFlight": "In flight",
  "controls.col.shed": "Shed",
  "controls.col.fallback": "Fallback",
  "controls.pause": "Pause",
  "controls.noFallback": "none",
  "controls.saved": "Saved.",
  "controls.prompts": "System prompts",
  "controls.promptsEmpty": "No system prompts.",
  "controls.col.scope": "Scope",
  "controls.col.target": "For",
  "controls.col.mode": "Mode",
  "controls.col.prompt": "Prompt",
  "controls.col.updated": "Updated",
  "controls.scope.model": "model",
  "controls.scope.key": "key",
  "controls.filters": "Content-filter lists",
  "controls.filtersEmpty": "No content-filter lists.",
  "controls.col.list": "List",
  "controls.col.action": "Action",
  "controls.col.checkPrompt": "Checks prompts",
  "controls.col.words": "Words",
  "controls.col.patterns": "Patterns",
  "error.network": "The gateway cannot be reached. Check your connection.",
  "error.unauthorized": "Your console session has ended. Log in again.",
  "error.forbidden": "The gateway refused this change (HTTP 403): {detail}",
  "error.notFound": "Not found: {detail}",
  "error.badRequest": "Refused: {detail}",
  "error.withStatus": "{detail} (HTTP {status}).",
  "error.requestFailed": "Request failed",
};

const zh = {
  "app.name": "llm-relay 控制台",
  "page.title": "llm-relay 控制台",
  "language.name": "中文",
  "language.switchTo": "Switch to English",
  "login.intro": "运维控制台。请使用网关的管理令牌（GATEWAY_ADMIN_TOKEN）登录。",
  "login.token": "管理令牌",
  "login.submit": "登录",
  "login.enterToken": "请输入管理令牌。",
  "login.invalidToken": "该管理令牌无效。",
  "login.unavailable": "此网关不支持控制台登录（HTTP {status}）。网关是否为最新版本？",
  "nav.label": "栏目",
  "nav.keys": "API 密钥",
  "nav.usage": "用量",
  "nav.upstreams": "上游副本",
  "nav.controls": "运维控制",
  "nav.logout": "退出登录",
  "common.refresh": "刷新",
  "common.loading": "加载中…",
  "common.none": "—",
  "common.cancel": "取消",
  "common.save": "保存",
  "common.yes": "是",
  "common.no": "否",
  "common.unlimited": "不限",
  "keys.title": "API 密钥",
  "keys.new": "新建密钥",
  "keys.empty": "还没有 API 密钥。",
  "keys.col.name": "名称",
  "keys.col.prefix": "前缀",
  "keys.col.limits": "限额",
  "keys.col.budget": "预算",
  "keys.col.status": "状态",
  "keys.col.lastUsed": "最近使用",
  "keys.col.actions": "操作",
  "keys.limits": "每分钟 {rpm} 次请求 · 每分钟 {tpm} 个令牌 · {streams} 路并发",
  "keys.enabled": "已启用",
  "keys.disabled": "已停用",
  "keys.never": "从未",
  "keys.edit": "编辑",
  "keys.enable": "启用",
  "keys.disable": "停用",
  "keys.delete": "删除",
  "keys.confirmDelete": "确定删除密钥“{name}”？使用它的客户端将无法继续访问。",
  "keys.confirmDeleteYes": "删除密钥",
  "keys.deleted": "密钥“{name}”已删除。",
  "keys.saved": "密钥“{name}”已保存。",
  "keys.noBudget": "无预算",
  "keys.budgetUsed": "已用 {used} / {tokens} 个令牌（{period}）",
  "keys.budgetRemaining": "剩余 {remaining}",
  "keys.budgetResets": "{when} 重置",
  "keys.budgetNeverResets": "不重置",
  "period.day": "每天",
  "period.month": "每月",
  "period.total": "总计",
  "form.createTitle": "新建 API 密钥",
  "form.editTitle": "编辑密钥“{name}”",
  "form.name": "名称",
  "form.rpm": "每分钟请求数",
  "form.tpm": "每分钟令牌数",
  "form.streams": "并发流数",
  "form.defaultHint": "留空：使用网关默认值",
  "form.enabled": "启用",
  "form.budget": "令牌预算",
  "form.budgetTokens": "预算（令牌数）",
  "form.budgetPeriod": "周期",
  "form.budgetNone": "无预算",
  "form.budgetDay": "每个 UTC 日",
  "form.budgetMonth": "每个 UTC 月",
  "form.budgetTotal": "总计",
  "form.create": "创建密钥",
  "form.needName": "请为密钥命名。",
  "form.needPositive": "{field}必须是不小于 1 的整数。",
  "form.needBudget": "预算的令牌数必须不小于 1。",
  "created.title": "密钥“{name}”已创建",
  "created.once": "请立即复制此密钥：它只显示这一次，之后无法再次查看。",
  "created.copy": "复制",
  "created.copied": "已复制",
  "created.copyFailed": "复制失败：请手动选中密钥并复制。",
  "created.done": "我已保存",
  "usage.title": "用量",
  "usage.range": "时间范围",
  "usage.range24h": "最近 24 小时（按小时）",
  "usage.range7d": "最近 7 天（按天）",
  "usage.range30d": "最近 30 天（按天）",
  "usage.by": "分组",
  "usage.byKey": "API 密钥",
  "usage.byModel": "模型",
  "usage.totals": "{requests} 次请求 · {tokens} 个令牌 · {errors} 次错误",
  "usage.empty": "此时间范围内没有流量。",
  "usage.chart.requests": "请求数",
  "usage.chart.tokens": "令牌数（提示 + 补全）",
  "usage.chart.errors": "错误数",
  "usage.chart.ttft": "首令牌时间 p50 / p95（毫秒）",
  "usage.noKey": "无密钥",
  "usage.noModel": "无模型",
  "usage.table": "图表背后的数据",
  "usage.col.start": "开始时间",
  "usage.col.group": "密钥 / 模型",
  "usage.col.requests": "请求数",
  "usage.col.prompt": "提示令牌",
  "usage.col.completion": "补全令牌",
  "usage.col.errors": "错误数",
  "usage.col.ttft": "首令牌 p50 / p95（毫秒）",
  "usage.col.cost": "费用",
  "usage.truncated": "仅显示前 {count} 组。",
  "upstreams.title": "上游副本",
  "upstreams.empty": "未配置上游。",
  "upstreams.col.name": "副本",
  "upstreams.col.model": "模型",
  "upstreams.col.health": "健康状态",
  "upstreams.col.breaker": "熔断器",
  "upstreams.col.inFlight": "进行中",
  "upstreams.col.waiting": "排队",
  "upstreams.col.running": "运行中",
  "upstreams.healthy": "健康",
  "upstreams.unhealthy": "不健康",
  "upstreams.anyModel": "任意（默认池）",
  "upstreams.updated": "更新于 {when}",
  "controls.title": "运维控制",
  "controls.policyVersion": "策略版本 {version}",
  "controls.degradation": "降级",
  "controls.refuseNew": "拒绝新的浏览器对话",
  "controls.refuseNewHint": "已有对话继续；/v1 不受影响。",
  "controls.refusing": "正在拒绝：{message}",
  "controls.cap": "为所有请求设置 max_tokens 上限",
  "controls.capValue": "上限（令牌数）",
  "controls.capApply": "应用上限",
  "controls.capLift": "取消上限",
  "controls.capNone": "无上限",
  "controls.capCurrent": "当前上限：{value}",
  "controls.capInvalid": "上限必须是 1 到 1000000 之间的整数。",
  "controls.pools": "上游池",
  "controls.col.pool": "池",
  "controls.col.paused": "已暂停",
  "controls.col.limit": "并发上限",
  "controls.col.inFlight": "进行中",
  "controls.col.shed": "已削减",
  "controls.col.fallback": "回退模型",
  "controls.pause": "暂停",
  "controls.noFallback": "无",
  "controls.saved": "已保存。",
  "controls.prompts": "系统提示词",
  "controls.promptsEmpty": "没有系统提示词。",
  "controls.col.scope": "范围",
  "controls.col.target": "对象",
  "controls.col.mode": "方式",
  "controls.col.prompt": "提示词",
  "controls.col.updated": "更新时间",
  "controls.scope.model": "模型",
  "controls.scope.key": "密钥",
  "controls.filters": "内容过滤列表",
  "controls.filtersEmpty": "没有内容过滤列表。",
  "controls.col.list": "列表",
  "controls.col.action": "动作",
  "controls.col.checkPrompt": "检查提示",
  "controls.col.words": "词条",
  "controls.col.patterns": "正则",
  "error.network": "无法连接到网关，请检查网络连接。",
  "error.unauthorized": "控制台会话已结束，请重新登录。",
  "error.forbidden": "网关拒绝了此修改（HTTP 403）：{detail}",
  "error.notFound": "未找到：{detail}",
  "error.badRequest": "已拒绝：{detail}",
  "error.withStatus": "{detail}（HTTP {status}）。",
  "error.requestFailed": "请求失败",
};

export const TABLES = Object.freeze({ en, zh });
export const HTML_LANG = Object.freeze({ en: "en", zh: "zh-CN" });

let language = initialLanguage();
const listeners = new Set();

function stored() {
  try {
    const value = globalThis.localStorage?.getItem(STORAGE_KEY);
    return value in TABLES ? value : null;
  } catch {
    return null; // storage disabled: fall back to the browser's languages
  }
}

// The first of the browser's languages that the console speaks decides; English otherwise.
export function languageFromBrowser(languages = globalThis.navigator?.languages || [globalThis.navigator?.language]) {
  for (const tag of languages || []) {
    const primary = String(tag).toLowerCase().split("-")[0];
    if (primary === "zh") return "zh";
    if (primary === "en") return "en";
  }
  return "en";
}

function initialLanguage() {
  return stored() || languageFromBrowser();
}

export function currentLanguage() {
  return language;
}

export function locale() {
  return HTML_LANG[language];
}

// The string for key in the current language, with {name} replaced from params.
export function t(key, params = {}) {
  const template = TABLES[language][key] ?? en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

export function setLanguage(next, { remember = true } = {}) {
  if (!(next in TABLES)) return;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, next);
    } catch {
      // not remembered; still switch for this page
    }
  }
  if (next === language) return;
  language = next;
  applyStatic();
  for (const listener of listeners) listener(language);
}

export function onLanguageChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const ATTRIBUTES = [
  ["data-i18n-placeholder", "placeholder"],
  ["data-i18n-aria-label", "aria-label"],
  ["data-i18n-title", "title"],
];

// Fills the static markup's strings, <html lang> and the title from the current table.
export function applyStatic(root = document) {
  document.documentElement.lang = HTML_LANG[language];
  document.title = t("page.title");
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const [data, attribute] of ATTRIBUTES) {
    for (const element of root.querySelectorAll(`[${data}]`)) {
      element.setAttribute(attribute, t(element.getAttribute(data)));
    }
  }
}

// Numbers and instants as the current language writes them.
export function formatNumber(value) {
  return value == null ? t("common.none") : new Intl.NumberFormat(locale()).format(value);
}

export function formatInstant(iso, { withDate = true } = {}) {
  if (!iso) return t("common.none");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(locale(), withDate
    ? { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }
    : { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
