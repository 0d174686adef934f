// The upstream replicas: health, breaker state, in flight, and the model-service's own queue
// (waiting) and batch (running) when it reports them. Refreshed every few seconds while shown.

import { api, explainError } from "./api.js";
import { clear, el, Message } from "./dom.js";
import { formatInstant, formatNumber, t } from "./i18n.js";

const REFRESH_MS = 5000;

export class UpstreamsView {
  constructor(root) {
    this.root = root;
    this.body = root.querySelector("#upstreams-body");
    this.empty = root.querySelector("#upstreams-empty");
    this.updated = root.querySelector("#upstreams-updated");
    this.message = new Message(root.querySelector("#upstreams-message"));
    this.upstreams = null;
    this.updatedAt = null;
    this.timer = null;
    root.querySelector("#upstreams-refresh").addEventListener("click", () => this.load());
  }

  show() {
    this.root.hidden = false;
    clearInterval(this.timer);
    this.timer = setInterval(() => this.load(), REFRESH_MS);
    return this.load();
  }

  hide() {
    this.root.hidden = true;
    clearInterval(this.timer);
    this.timer = null;
  }

  reset() {
    this.hide();
    this.upstreams = null;
    this.message.hide();
    clear(this.body);
  }

  async load() {
    try {
      const answer = await api.upstreams();
      this.upstreams = answer?.upstreams || [];
      this.updatedAt = new Date().toISOString();
      this.message.hide();
      this.render();
    } catch (error) {
      this.message.show(() => explainError(error));
      if (error.status === 401) this.hide();
    }
  }

  render() {
    this.message.render();
    if (!this.upstreams) return;
    this.updated.textContent = t("upstreams.updated", { when: formatInstant(this.updatedAt, { withDate: false }) });
    clear(this.body);
    this.empty.hidden = this.upstreams.length > 0;
    for (const upstream of this.upstreams) {
      const breaker = String(upstream.breaker ?? "");
      this.body.append(el("tr", { dataset: { name: upstream.name, healthy: upstream.healthy, breaker } },
        el("td", {}, el("code", {}, upstream.name)),
        el("td", {}, upstream.model ?? t("upstreams.anyModel")),
        el("td", {}, el("span", { class: upstream.healthy ? "badge ok" : "badge bad" },
          t(upstream.healthy ? "upstreams.healthy" : "upstreams.unhealthy"))),
        el("td", {}, el("span", { class: `badge breaker-${breaker.toLowerCase().replace(/[^a-z_]/g, "")}` }, breaker || t("common.none"))),
        el("td", { class: "num", dataset: { field: "inFlight" } }, formatNumber(upstream.inFlight)),
        el("td", { class: "num", dataset: { field: "waiting" } }, formatNumber(upstream.waiting)),
        el("td", { class: "num", dataset: { field: "running" } }, formatNumber(upstream.running)),
      ));
    }
  }
}
