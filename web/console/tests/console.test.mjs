// Unit tests of the console's strings and its usage layout (run: node --test web/console/tests/).
import { test } from "node:test";
import assert from "node:assert/strict";
import { TABLES } from "../js/i18n.js";
import { assertTablesMatch } from "../../tests/tables.mjs";
import { layout, rangeSpec } from "../js/usage-data.js";

test("both languages have every string, with the same parameters", () => {
  assertTablesMatch(TABLES);
});

test("ranges: 24 UTC hours or 7 / 30 UTC days, ending with the bucket now is in", () => {
  const now = Date.parse("2026-12-07T10:30:00Z");
  const hours = rangeSpec("24h", now);
  assert.equal(hours.buckets.length, 24);
  assert.equal(hours.from, "2026-12-06T11:00:00.000Z");
  assert.equal(hours.to, "2026-12-07T10:30:00.000Z");
  assert.equal(new Date(hours.buckets.at(-1)).toISOString(), "2026-12-07T10:00:00.000Z");
  const days = rangeSpec("30d", now);
  assert.equal(days.step, "day");
  assert.equal(days.buckets.length, 30);
  assert.equal(days.from, "2026-11-08T00:00:00.000Z");
});

test("groups become one zero-filled line per key, TTFT gaps stay gaps, equal names are told apart", () => {
  const spec = rangeSpec("24h", Date.parse("2026-12-07T10:30:00Z"));
  const groups = [
    { start: "2026-12-07T09:00:00Z", keyId: 3, keyName: "team", requests: 2, promptTokens: 5, completionTokens: 7, errors: 1, ttftP50Ms: 10, ttftP95Ms: 20 },
    { start: "2026-12-07T10:00:00Z", keyId: 3, keyName: "team", requests: 1, promptTokens: 1, completionTokens: 1, errors: 0 },
    { start: "2026-12-07T10:00:00Z", keyId: 4, keyName: "team", requests: 4, promptTokens: 0, completionTokens: 0, errors: 0 },
    { start: "2026-12-07T10:00:00Z", keyId: null, requests: 1, errors: 1 },
    { start: "2026-11-01T00:00:00Z", keyId: 3, keyName: "team", requests: 99 }, // outside the range
  ];
  const { xs, series, totals } = layout(groups, spec, "key", { noKey: "no key", noModel: "no model" });
  assert.equal(xs.length, 24);
  assert.deepEqual(series.map((s) => s.label), ["no key", "team #3", "team #4"]);
  const team3 = series[1];
  assert.deepEqual(team3.requests.slice(-3), [0, 2, 1]);
  assert.deepEqual(team3.tokens.slice(-2), [12, 2]);
  assert.deepEqual(team3.ttftP50.slice(-2), [10, null]);
  assert.deepEqual(totals, { requests: 8, tokens: 14, errors: 2 });
});
