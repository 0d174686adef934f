// The operator controls with their current values: degradation (refuse new browser conversations,
// the max_tokens cap, paused pools, fallback routes, each pool's limit), system prompts and
// content-filter lists, and the policy version this gateway serves. Changes go through the
// degradation merge patch; the view then shows what the gateway answered, never what was asked.

import { api, explainError } from "./api.js";
import { clear, el, Message } from "./dom.js";
import { formatInstant, formatNumber, t } from "./i18n.js";

export class ControlsView {
  constructor(root) {
    this.root = root;
    this.message = new Message(root.querySelector("#controls-message"));
    this.refuse = root.querySelector("#refuse-new");
    this.refuseMessage = root.querySelector("#refuse-message");
    this.capCurrent = root.querySelector("#cap-current");
    this.capValue = root.querySelector("#cap-value");
    this.policyVersion = root.querySelector("#policy-version");
    this.pools = root.querySelector("#pools-body");
    this.prompts = root.querySelector("#prompts-body");
    this.filters = root.querySelector("#filters-body");
    this.state = { degradation: null, prompts: null, filters: null, policy: null };
    this.refuse.addEventListener("change", () => this.patch({ refuseNewConversations: this.refuse.checked }));
    root.querySelector("#cap-apply").addEventListener("click", () => this.applyCap());
    root.querySelector("#cap-lift").addEventListener("click", () => this.patch({ maxTokensCap: null }));
    root.querySelector("#controls-refresh").addEventListener("click", () => this.load());
  }

  show() {
    this.root.hidden = false;
    return this.load();
  }

  hide() {
    this.root.hidden = true;
  }

  reset() {
    this.state = { degradation: null, prompts: null, filters: null, policy: null };
    this.message.hide();
    for (const body of [this.pools, this.prompts, this.filters]) clear(body);
  }

  async load() {
    const [degradation, prompts, filters, policy] = await Promise.allSettled(
      [api.degradation(), api.systemPrompts(), api.filterLists(), api.policy()]);
    const failed = [degradation, prompts, filters, policy].find((r) => r.status === "rejected");
    this.state = {
      degradation: degradation.value ?? null,
      prompts: prompts.value ?? null,
      filters: filters.value ?? null,
      policy: policy.value ?? null,
    };
    if (failed) this.message.show(() => explainError(failed.reason));
    else this.message.hide();
    this.render();
  }

  async patch(change) {
    this.setBusy(true);
    try {
      this.state.degradation = await api.patchDegradation(change);
      this.message.show(() => t("controls.saved"), "ok");
      api.policy().then((policy) => { this.state.policy = policy; this.renderPolicy(); }, () => {});
    } catch (error) {
      this.message.show(() => explainError(error));
    } finally {
      this.setBusy(false);
      this.render();
    }
  }

  applyCap() {
    const text = this.capValue.value.trim();
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!(value >= 1 && value <= 1_000_000)) {
      this.message.show(() => t("controls.capInvalid"));
      this.capValue.focus();
      return;
    }
    this.patch({ maxTokensCap: value });
  }

  setBusy(busy) {
    for (const control of this.root.querySelectorAll(".card input, .card button")) control.disabled = busy;
  }

  render() {
    this.message.render();
    this.renderPolicy();
    this.renderDegradation();
    this.renderPrompts();
    this.renderFilters();
  }

  renderPolicy() {
    const version = this.state.policy?.version;
    this.policyVersion.textContent = version == null ? "" : t("controls.policyVersion", { version });
  }

  renderDegradation() {
    const view = this.state.degradation;
    this.root.dataset.refuseNewConversations = String(view?.refuseNewConversations != null);
    this.root.dataset.maxTokensCap = view?.maxTokensCap == null ? "" : String(view.maxTokensCap);
    this.refuse.checked = view?.refuseNewConversations != null;
    this.refuseMessage.textContent = view?.refuseNewConversations
      ? t("controls.refusing", { message: view.refuseNewConversations }) : "";
    this.capCurrent.textContent = t("controls.capCurrent", {
      value: view?.maxTokensCap == null ? t("controls.capNone") : formatNumber(view.maxTokensCap),
    });
    clear(this.pools);
    if (!view) return;
    const names = new Set([...Object.keys(view.pools || {}), ...Object.keys(view.pausedModels || {})]);
    for (const name of [...names].sort()) {
      const pool = view.pools?.[name] || {};
      const paused = view.pausedModels?.[name];
      const toggle = el("input", {
        type: "checkbox", role: "switch", checked: paused != null, "aria-label": `${t("controls.pause")} ${name}`,
        onchange: (event) => this.patch({ pausedModels: { [name]: event.target.checked ? true : null } }),
      });
      this.pools.append(el("tr", { dataset: { pool: name, paused: paused != null } },
        el("td", {}, el("code", {}, name)),
        el("td", {}, el("label", { class: "check" }, toggle, el("span", { class: "hint" }, paused ?? t("common.no")))),
        el("td", { class: "num" }, formatNumber(pool.limit)),
        el("td", { class: "num" }, formatNumber(pool.inFlight)),
        el("td", { class: "num" }, formatNumber(pool.shed)),
        el("td", {}, view.fallbacks?.[name] ?? t("controls.noFallback")),
      ));
    }
  }

  renderPrompts() {
    clear(this.prompts);
    const prompts = this.state.prompts || [];
    this.root.querySelector("#prompts-empty").hidden = prompts.length > 0 || this.state.prompts == null;
    for (const prompt of prompts) {
      this.prompts.append(el("tr", { dataset: { scope: prompt.scope, target: prompt.target } },
        el("td", {}, ["model", "key"].includes(prompt.scope) ? t(`controls.scope.${prompt.scope}`) : prompt.scope),
        el("td", {}, el("code", {}, prompt.target)),
        el("td", {}, prompt.mode),
        el("td", { class: "prompt-text" }, prompt.prompt),
        el("td", {}, formatInstant(prompt.updatedAt)),
      ));
    }
  }

  renderFilters() {
    clear(this.filters);
    const lists = this.state.filters || [];
    this.root.querySelector("#filters-empty").hidden = lists.length > 0 || this.state.filters == null;
    for (const list of lists) {
      this.filters.append(el("tr", { dataset: { list: list.name } },
        el("td", {}, el("code", {}, list.name)),
        el("td", {}, list.action),
        el("td", {}, t(list.checkPrompt ? "common.yes" : "common.no")),
        el("td", { class: "num" }, formatNumber(list.words)),
        el("td", { class: "num" }, formatNumber(list.patterns)),
      ));
    }
  }
}
