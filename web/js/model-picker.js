// The model picker in the chat header: the models GET /api/chat/models offers, showing the open
// conversation's model. Hidden when the gateway offers one model or none (or has no such route).
// The last model the user picked is remembered for new chats.

import { t } from "./i18n.js";

const STORAGE_KEY = "llm-relay.model";

export class ModelPicker {
  constructor({ wrapper, select }) {
    this.wrapper = wrapper;
    this.select = select;
    this.models = []; // ids, in the gateway's order
    this.defaultModel = null;
    this.extra = null; // a stored model the gateway no longer offers, shown as it is
    select.addEventListener("change", () => {
      if (this.select.value) remember(this.select.value);
    });
  }

  // From GET /api/chat/models; null (no such route, or it failed) hides the picker.
  load(answer) {
    const previous = this.value;
    this.models = (answer?.models || []).map((m) => m.id).filter((id) => typeof id === "string" && id);
    this.defaultModel = this.models.includes(answer?.default) ? answer.default : null;
    this.extra = null;
    this.render();
    if (previous) this.value = previous;
  }

  // Whether the gateway told us its models: only then does a message name one.
  get available() {
    return this.models.length > 0;
  }

  // The model to send ("" or null: the gateway's default).
  get value() {
    return this.available ? this.select.value || null : null;
  }

  // Shows a conversation's model; null means the default.
  set value(model) {
    if (!this.available) return;
    const wanted = model || this.defaultModel || "";
    this.extra = wanted && !this.models.includes(wanted) ? wanted : null;
    this.render();
    this.select.value = wanted;
  }

  // A new chat starts at the model picked last (if still offered), else the default.
  showForNewChat() {
    const last = remembered();
    this.value = last && this.models.includes(last) ? last : null;
  }

  render() {
    const selected = this.select.value;
    const options = [];
    if (!this.defaultModel) options.push(option("", t("chat.defaultModel")));
    for (const id of this.models) options.push(option(id, id));
    if (this.extra) options.push(option(this.extra, this.extra));
    this.select.replaceChildren(...options);
    if (selected) this.select.value = selected;
    this.wrapper.hidden = this.models.length + (this.extra ? 1 : 0) <= 1;
  }
}

function option(value, label) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = label;
  return element;
}

function remember(model) {
  try {
    localStorage.setItem(STORAGE_KEY, model);
  } catch {
    // storage disabled: new chats start at the default
  }
}

function remembered() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}
