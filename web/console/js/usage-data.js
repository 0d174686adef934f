// Pure functions behind the usage charts (no DOM, so node --test can check them): the range asked
// for, every time bucket in it (empty buckets count 0, so a quiet hour shows as 0 and not as a gap),
// and the admin API's groups laid out as one series per key or model.

const HOUR = 3600_000;
const DAY = 24 * HOUR;

export const RANGES = Object.freeze({
  "24h": { step: "hour", count: 24 },
  "7d": { step: "day", count: 7 },
  "30d": { step: "day", count: 30 },
});

// from: the start of the oldest bucket (UTC hours / UTC days); to: now. Buckets: their starts in ms.
export function rangeSpec(range, now = Date.now()) {
  const { step, count } = RANGES[range] || RANGES["24h"];
  const size = step === "hour" ? HOUR : DAY;
  const last = Math.floor(now / size) * size;
  const buckets = [];
  for (let i = count - 1; i >= 0; i--) buckets.push(last - i * size);
  return { step, size, from: new Date(buckets[0]).toISOString(), to: new Date(now).toISOString(), buckets };
}

// What a group is called in a legend: the key's name (or #id), the model, or a word for "none".
export function groupId(group, by) {
  return by === "key" ? (group.keyId == null ? "" : `key:${group.keyId}`) : `model:${group.model ?? ""}`;
}

export function groupLabel(group, by, words = { noKey: "no key", noModel: "no model" }) {
  if (by === "key") return group.keyName || (group.keyId == null ? words.noKey : `#${group.keyId}`);
  return group.model || words.noModel;
}

export const tokensOf = (group) => (group.promptTokens || 0) + (group.completionTokens || 0);

// {xs (seconds, for uPlot), series: [{id, label, requests[], tokens[], errors[], ttftP50[], ttftP95[]}], totals}
export function layout(groups, spec, by, words) {
  const index = new Map(spec.buckets.map((start, i) => [start, i]));
  const series = new Map();
  const totals = { requests: 0, tokens: 0, errors: 0 };
  for (const group of groups) {
    const start = Date.parse(group.start);
    const at = index.has(start) ? index.get(start) : bucketOf(start, spec);
    if (at == null) continue; // outside the range asked for
    const id = groupId(group, by);
    if (!series.has(id)) {
      const zeros = () => spec.buckets.map(() => 0);
      const gaps = () => spec.buckets.map(() => null);
      series.set(id, { id, label: groupLabel(group, by, words), requests: zeros(), tokens: zeros(), errors: zeros(),
        ttftP50: gaps(), ttftP95: gaps() });
    }
    const s = series.get(id);
    s.requests[at] += group.requests || 0;
    s.tokens[at] += tokensOf(group);
    s.errors[at] += group.errors || 0;
    // one group per bucket and key/model: the percentiles are the API's own
    if (group.ttftP50Ms != null) s.ttftP50[at] = group.ttftP50Ms;
    if (group.ttftP95Ms != null) s.ttftP95[at] = group.ttftP95Ms;
    totals.requests += group.requests || 0;
    totals.tokens += tokensOf(group);
    totals.errors += group.errors || 0;
  }
  const ordered = [...series.values()].sort((a, b) => a.label.localeCompare(b.label) || a.id.localeCompare(b.id));
  // two keys may share a name: their lines (and data-series members) must not
  const seen = new Map();
  for (const s of ordered) seen.set(s.label, (seen.get(s.label) || 0) + 1);
  for (const s of ordered) if (seen.get(s.label) > 1 && s.id.startsWith("key:")) s.label = `${s.label} #${s.id.slice(4)}`;
  return { xs: spec.buckets.map((ms) => ms / 1000), series: ordered, totals };
}

function bucketOf(start, spec) {
  if (Number.isNaN(start)) return null;
  const at = Math.floor((start - spec.buckets[0]) / spec.size);
  return at >= 0 && at < spec.buckets.length ? at : null;
}
