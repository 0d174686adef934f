// The usage section: four charts (requests, tokens, errors, TTFT p50/p95) over the last 24 hours
// (hourly buckets), 7 or 30 days (daily), one line per API key or per model, and the table of the
// numbers they draw. Pages of the admin API are read until `next` is null, at most MAX_PAGES.

import { api, explainError } from "./api.js";
import { clear, el, Message } from "./dom.js";
import { formatInstant, formatNumber, locale, t } from "./i18n.js";
import { PALETTE, UsageChart } from "./usage-chart.js";
import { groupId, groupLabel, layout, rangeSpec, tokensOf } from "./usage-data.js";

const PAGE_SIZE = 1000;
const MAX_PAGES = 20;

export class UsageView {
  constructor(root) {
    this.root = root;
    this.range = root.querySelector("#usage-range");
    this.by = root.querySelector("#usage-by");
    this.totals = root.querySelector("#usage-totals");
    this.body = root.querySelector("#usage-body");
    this.message = new Message(root.querySelector("#usage-message"));
    this.charts = Object.fromEntries(["requests", "tokens", "errors", "ttft"].map(
      (metric) => [metric, new UsageChart(root.querySelector(`#chart-${metric}`))]));
    this.result = null; // {spec, by, groups, truncated}
    this.loading = null;
    this.range.addEventListener("change", () => this.load());
    this.by.addEventListener("change", () => this.load());
    root.querySelector("#usage-refresh").addEventListener("click", () => this.load());
  }

  show() {
    this.root.hidden = false;
    return this.load();
  }

  hide() {
    this.root.hidden = true;
  }

  reset() {
    this.result = null;
    this.message.hide();
    clear(this.body);
    this.totals.textContent = "";
    for (const chart of Object.values(this.charts)) chart.destroy();
  }

  async load() {
    const spec = rangeSpec(this.range.value);
    const by = this.by.value;
    const request = (this.loading = {});
    this.root.dataset.state = "loading";
    try {
      const groups = [];
      let page = null;
      let pages = 0;
      do {
        const params = { from: spec.from, to: spec.to, groupBy: `${spec.step},${by}`, limit: String(PAGE_SIZE) };
        if (page) params.page = page;
        const answer = await api.usage(params);
        groups.push(...(answer?.groups || []));
        page = answer?.next || null;
        pages += 1;
      } while (page && pages < MAX_PAGES);
      if (request !== this.loading) return; // a newer load took over
      this.result = { spec, by, groups, truncated: page != null };
      this.message.hide();
      this.render();
      this.root.dataset.state = "ready";
    } catch (error) {
      if (request !== this.loading) return;
      this.message.show(() => explainError(error));
      this.root.dataset.state = "error";
    }
  }

  render() {
    this.message.render();
    if (!this.result) return;
    const { spec, by, groups, truncated } = this.result;
    const words = { noKey: t("usage.noKey"), noModel: t("usage.noModel") };
    const { xs, series, totals } = layout(groups, spec, by, words);
    this.root.dataset.range = this.range.value;
    this.root.dataset.by = by;
    this.totals.textContent = series.length === 0 ? t("usage.empty") : t("usage.totals", {
      requests: formatNumber(totals.requests), tokens: formatNumber(totals.tokens), errors: formatNumber(totals.errors),
    }) + (truncated ? ` ${t("usage.truncated", { count: groups.length })}` : "");
    const options = { step: spec.step, emptyText: t("usage.empty"), locale: locale(), timeLabel: t("usage.col.start") };
    for (const metric of ["requests", "tokens", "errors"]) {
      this.charts[metric].render(xs, series.map((s) => ({ label: s.label, values: s[metric] })), options);
    }
    this.charts.ttft.render(xs, series.flatMap((s, i) => [
      { label: `${s.label} p50`, values: s.ttftP50, color: PALETTE[i % PALETTE.length] },
      { label: `${s.label} p95`, values: s.ttftP95, color: PALETTE[i % PALETTE.length], dash: [6, 4] },
    ]), { ...options, integer: false });
    this.renderTable(groups, by, words);
  }

  renderTable(groups, by, words) {
    clear(this.body);
    for (const group of groups) {
      const cost = (group.cost || []).map((c) => `${formatNumber(c.amount)} ${c.currency}`).join(", ");
      this.body.append(el("tr", {
        dataset: {
          start: group.start ?? "", group: groupId(group, by), label: groupLabel(group, by, words),
          requests: group.requests ?? 0, tokens: tokensOf(group), errors: group.errors ?? 0,
        },
      },
        el("td", {}, formatInstant(group.start)),
        el("td", {}, groupLabel(group, by, words)),
        el("td", { class: "num" }, formatNumber(group.requests ?? 0)),
        el("td", { class: "num" }, formatNumber(group.promptTokens ?? 0)),
        el("td", { class: "num" }, formatNumber(group.completionTokens ?? 0)),
        el("td", { class: "num" }, formatNumber(group.errors ?? 0)),
        el("td", { class: "num" }, `${formatNumber(group.ttftP50Ms)} / ${formatNumber(group.ttftP95Ms)}`),
        el("td", {}, cost || t("common.none")),
      ));
    }
  }
}
