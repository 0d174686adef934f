// The create / edit form of an API key: name, the three limits, enabled, and an optional budget.
// It turns what was typed into the admin API's body: on create an empty limit is left out (the
// gateway's default applies); on edit every limit is sent, and "no budget" sends "budget": null.

import { t } from "./i18n.js";

const LIMITS = [
  ["requestsPerMinute", "key-rpm", "form.rpm"],
  ["tokensPerMinute", "key-tpm", "form.tpm"],
  ["maxConcurrentStreams", "key-streams", "form.streams"],
];

function wholeNumber(text) {
  const value = text.trim();
  if (value === "") return null;
  return /^\d+$/.test(value) ? Number(value) : NaN;
}

export class KeyForm {
  constructor(form, { onSubmit }) {
    this.form = form;
    this.title = form.querySelector("#key-form-title");
    this.submit = form.querySelector("#key-form-submit");
    this.error = form.querySelector("#key-form-error");
    this.name = form.querySelector("#key-name");
    this.enabled = form.querySelector("#key-enabled");
    this.period = form.querySelector("#key-budget-period");
    this.tokens = form.querySelector("#key-budget-tokens");
    this.limits = LIMITS.map(([field, id, label]) => ({ field, input: form.querySelector(`#${id}`), label }));
    this.editing = null; // the key being edited, or null for a new one
    this.errorMessage = null;
    this.period.addEventListener("change", () => this.syncBudget());
    form.querySelector("#key-form-cancel").addEventListener("click", () => this.hide());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = this.body();
      if (!body) return;
      this.submit.disabled = true;
      try {
        await onSubmit(body, this.editing);
      } finally {
        this.submit.disabled = false;
      }
    });
  }

  get visible() {
    return !this.form.hidden;
  }

  openCreate() {
    this.editing = null;
    this.form.reset();
    this.enabled.checked = true;
    this.open();
  }

  openEdit(key) {
    this.editing = key;
    this.form.reset();
    this.name.value = key.name || "";
    for (const { field, input } of this.limits) input.value = key[field] ?? "";
    this.enabled.checked = !!key.enabled;
    this.period.value = key.budget?.period || "";
    this.tokens.value = key.budget?.tokens ?? "";
    this.open();
  }

  open() {
    this.showError(null);
    this.syncBudget();
    this.render();
    this.form.hidden = false;
    this.name.focus();
  }

  hide() {
    this.form.hidden = true;
    this.editing = null;
    this.showError(null);
  }

  syncBudget() {
    this.tokens.disabled = this.period.value === "";
    this.tokens.required = !this.tokens.disabled;
  }

  render() {
    this.title.textContent = this.editing ? t("form.editTitle", { name: this.editing.name }) : t("form.createTitle");
    this.submit.textContent = this.editing ? t("common.save") : t("form.create");
    if (this.errorMessage) this.error.textContent = this.errorMessage();
  }

  showError(make) {
    this.errorMessage = make;
    this.error.textContent = make ? make() : "";
  }

  // The admin API body for what the form holds, or null (and a message) when something is not valid.
  body() {
    const name = this.name.value.trim();
    if (!name) return this.refuse(() => t("form.needName"), this.name);
    const body = { name, enabled: this.enabled.checked };
    for (const { field, input, label } of this.limits) {
      const value = wholeNumber(input.value);
      if (value === null && !this.editing) continue;
      if (!(value >= 1)) return this.refuse(() => t("form.needPositive", { field: t(label) }), input);
      body[field] = value;
    }
    if (this.period.value) {
      const tokens = wholeNumber(this.tokens.value);
      if (!(tokens >= 1)) return this.refuse(() => t("form.needBudget"), this.tokens);
      body.budget = { tokens, period: this.period.value };
    } else if (this.editing) {
      body.budget = null;
    }
    this.showError(null);
    return body;
  }

  refuse(make, input) {
    this.showError(make);
    input.focus();
    return null;
  }
}
