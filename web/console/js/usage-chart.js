// One usage chart: a uPlot line chart (vendored, web/console/vendor/uplot) of one metric over the
// range's buckets, one line per key or model. The figure also carries what it draws as data
// (data-series: {label: [values]}, data-total), the same numbers as the table under the charts.

import uPlot from "../vendor/uplot/uPlot.esm.js";

const INTEGER_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6,
  1e7, 2e7, 5e7, 1e8, 2e8, 5e8, 1e9];
const PALETTE = ["#2f6fde", "#d9822b", "#2e9d5b", "#c23b32", "#8a5cd1", "#1b9aaa", "#b5487f", "#7a8b23"];

function cssVar(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

export class UsageChart {
  constructor(figure) {
    this.figure = figure;
    this.plotArea = figure.querySelector(".plot");
    this.plot = null;
    new ResizeObserver(() => this.fit()).observe(this.plotArea);
  }

  // lines: [{label, values, color?, dash?}]; step: "hour" | "day"; emptyText: shown when there are none.
  // integer: counts (requests, tokens, errors) get whole-number ticks only.
  render(xs, lines, { step, emptyText, locale, timeLabel = "Time", integer = true }) {
    const data = {};
    let total = 0;
    for (const line of lines) {
      data[line.label] = line.values;
      for (const value of line.values) total += value || 0;
    }
    this.figure.dataset.series = JSON.stringify(data);
    this.figure.dataset.total = String(total);
    this.figure.dataset.buckets = String(xs.length);
    this.destroy();
    this.plotArea.replaceChildren();
    if (lines.length === 0) {
      this.plotArea.append(Object.assign(document.createElement("p"), { className: "hint empty", textContent: emptyText }));
      return;
    }
    const muted = cssVar("--muted", "#667085");
    const grid = cssVar("--border", "#d9dee7");
    const axis = { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const dateFormat = new Intl.DateTimeFormat(locale, step === "hour"
      ? { hour: "2-digit", minute: "2-digit" } : { month: "2-digit", day: "2-digit" });
    const fullFormat = new Intl.DateTimeFormat(locale, step === "hour"
      ? { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" } : { year: "numeric", month: "2-digit", day: "2-digit" });
    const options = {
      width: this.width(),
      height: 200,
      padding: [12, 28, 0, 0],
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [
        { ...axis, values: (u, splits) => splits.map((s) => dateFormat.format(new Date(s * 1000))) },
        { ...axis, size: 56, ...(integer ? { incrs: INTEGER_STEPS } : {}) },
      ],
      series: [
        { label: timeLabel, value: (u, v) => (v == null ? "" : fullFormat.format(new Date(v * 1000))) },
        ...lines.map((line, i) => ({
          label: line.label,
          stroke: line.color || PALETTE[i % PALETTE.length],
          width: 2,
          dash: line.dash,
          points: { show: true, size: 5 },
          spanGaps: false,
        })),
      ],
    };
    this.plot = new uPlot(options, [xs, ...lines.map((line) => line.values)], this.plotArea);
  }

  width() {
    return Math.max(240, Math.floor(this.plotArea.clientWidth || this.figure.clientWidth || 480));
  }

  fit() {
    if (this.plot && this.plotArea.clientWidth) this.plot.setSize({ width: this.width(), height: 200 });
  }

  destroy() {
    this.plot?.destroy();
    this.plot = null;
  }
}

export { PALETTE };
