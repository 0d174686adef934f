// The API keys section: the list (limits, a budget bar, status), create and edit (KeyForm),
// enable/disable, delete with an inline confirmation (no dialogs), and the plaintext of a new key,
// shown once: it lives only in this object until "I have saved it", a log-out or a reload.

import { api, explainError } from "./api.js";
import { clear, el, Message } from "./dom.js";
import { KeyForm } from "./key-form.js";
import { formatInstant, formatNumber, t } from "./i18n.js";

export class KeysView {
  constructor(root) {
    this.root = root;
    this.body = root.querySelector("#keys-body");
    this.empty = root.querySelector("#keys-empty");
    this.message = new Message(root.querySelector("#keys-message"));
    this.keys = [];
    this.confirming = null; // id of the key whose delete waits for a confirmation
    this.created = null; // {name, key}: the plaintext of the key just created, until dismissed
    this.newKey = root.querySelector("#new-key");
    this.newKeyTitle = root.querySelector("#new-key-title");
    this.newKeyValue = root.querySelector("#new-key-value");
    this.copyState = root.querySelector("#new-key-copy-state");
    this.copyMessage = null;
    this.form = new KeyForm(root.querySelector("#key-form"), { onSubmit: (body, key) => this.save(body, key) });
    root.querySelector("#key-new").addEventListener("click", () => this.form.openCreate());
    root.querySelector("#keys-refresh").addEventListener("click", () => this.load());
    root.querySelector("#new-key-copy").addEventListener("click", () => this.copy());
    root.querySelector("#new-key-done").addEventListener("click", () => this.forgetCreated());
  }

  show() {
    this.root.hidden = false;
    return this.load();
  }

  hide() {
    this.root.hidden = true;
  }

  // Log-out: nothing of the session stays in the page.
  reset() {
    this.forgetCreated();
    this.form.hide();
    this.keys = [];
    this.confirming = null;
    this.message.hide();
    clear(this.body);
  }

  async load() {
    try {
      this.keys = await api.keys();
      this.render();
    } catch (error) {
      this.message.show(() => explainError(error));
    }
  }

  async save(body, key) {
    try {
      if (key) {
        const saved = await api.updateKey(key.id, body);
        this.form.hide();
        this.message.show(() => t("keys.saved", { name: saved.name }), "ok");
      } else {
        const created = await api.createKey(body);
        this.form.hide();
        this.message.hide();
        this.showCreated(created);
      }
      await this.load();
    } catch (error) {
      this.form.showError(() => explainError(error));
    }
  }

  showCreated(created) {
    this.created = { name: created.name, key: created.key };
    this.newKeyValue.textContent = created.key;
    this.copyMessage = null;
    this.copyState.textContent = "";
    this.renderCreated();
    this.newKey.hidden = false;
  }

  renderCreated() {
    if (!this.created) return;
    this.newKeyTitle.textContent = t("created.title", { name: this.created.name });
    this.copyState.textContent = this.copyMessage ? t(this.copyMessage) : "";
  }

  forgetCreated() {
    this.created = null;
    this.newKeyValue.textContent = "";
    this.copyState.textContent = "";
    this.newKey.hidden = true;
  }

  async copy() {
    if (!this.created) return;
    try {
      await navigator.clipboard.writeText(this.created.key);
      this.copyMessage = "created.copied";
    } catch {
      // no clipboard permission (or an insecure origin): select it for a manual copy
      const range = document.createRange();
      range.selectNodeContents(this.newKeyValue);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      this.copyMessage = "created.copyFailed";
    }
    this.renderCreated();
  }

  async setEnabled(key, enabled) {
    try {
      await api.updateKey(key.id, { enabled });
      await this.load();
    } catch (error) {
      this.message.show(() => explainError(error));
    }
  }

  async remove(key) {
    try {
      await api.deleteKey(key.id);
      this.confirming = null;
      if (this.form.editing?.id === key.id) this.form.hide();
      this.message.show(() => t("keys.deleted", { name: key.name }), "ok");
      await this.load();
    } catch (error) {
      this.message.show(() => explainError(error));
    }
  }

  // Re-renders in the current language (also after a switch).
  render() {
    this.message.render();
    this.form.render();
    this.renderCreated();
    clear(this.body);
    this.empty.hidden = this.keys.length > 0;
    for (const key of this.keys) this.body.append(this.row(key));
  }

  row(key) {
    const limits = t("keys.limits", {
      rpm: formatNumber(key.requestsPerMinute),
      tpm: formatNumber(key.tokensPerMinute),
      streams: formatNumber(key.maxConcurrentStreams),
    });
    return el("tr", { dataset: { keyId: key.id, keyName: key.name, enabled: key.enabled } },
      el("td", { dataset: { field: "name" } }, key.name),
      el("td", { dataset: { field: "prefix" } }, el("code", {}, `${key.prefix}…`)),
      el("td", {
        dataset: {
          field: "limits",
          requestsPerMinute: key.requestsPerMinute,
          tokensPerMinute: key.tokensPerMinute,
          maxConcurrentStreams: key.maxConcurrentStreams,
        },
      }, limits),
      el("td", { dataset: { field: "budget" } }, budgetCell(key.budget)),
      el("td", { dataset: { field: "status" } },
        el("span", { class: key.enabled ? "badge ok" : "badge off" }, t(key.enabled ? "keys.enabled" : "keys.disabled"))),
      el("td", { dataset: { field: "lastUsed" } }, key.lastUsedAt ? formatInstant(key.lastUsedAt) : t("keys.never")),
      el("td", { class: "row-actions" }, this.actions(key)),
    );
  }

  actions(key) {
    if (this.confirming === key.id) {
      return el("div", { class: "confirm", role: "group" },
        el("span", {}, t("keys.confirmDelete", { name: key.name })),
        el("button", { type: "button", class: "danger", dataset: { action: "confirm-delete" }, onclick: () => this.remove(key) },
          t("keys.confirmDeleteYes")),
        el("button", { type: "button", dataset: { action: "cancel-delete" }, onclick: () => { this.confirming = null; this.render(); } },
          t("common.cancel")));
    }
    return [
      el("button", { type: "button", dataset: { action: "edit" }, onclick: () => this.form.openEdit(key) }, t("keys.edit")),
      el("button", { type: "button", dataset: { action: key.enabled ? "disable" : "enable" },
        onclick: () => this.setEnabled(key, !key.enabled) }, t(key.enabled ? "keys.disable" : "keys.enable")),
      el("button", { type: "button", class: "quiet danger-text", dataset: { action: "delete" },
        onclick: () => { this.confirming = key.id; this.render(); } }, t("keys.delete")),
    ];
  }
}

function budgetCell(budget) {
  if (!budget) return el("span", { class: "hint" }, t("keys.noBudget"));
  const resets = budget.resetsAt ? t("keys.budgetResets", { when: formatInstant(budget.resetsAt) }) : t("keys.budgetNeverResets");
  const share = budget.tokens > 0 ? budget.used / budget.tokens : 0;
  return el("div", {
    class: share >= 1 ? "budget spent" : share >= 0.8 ? "budget high" : "budget",
    dataset: { tokens: budget.tokens, period: budget.period, used: budget.used, remaining: budget.remaining, resetsAt: budget.resetsAt ?? "" },
  },
    el("progress", { class: "budget-bar", max: String(budget.tokens), value: String(Math.min(budget.used, budget.tokens)) }),
    el("span", { class: "budget-text" },
      t("keys.budgetUsed", { used: formatNumber(budget.used), tokens: formatNumber(budget.tokens), period: t(`period.${budget.period}`) })),
    el("span", { class: "hint" }, `${t("keys.budgetRemaining", { remaining: formatNumber(budget.remaining) })} · ${resets}`),
  );
}
