// What both pages' string tables must hold (web/tests, web/console/tests): every key in both
// languages, with the same {parameters}.
import assert from "node:assert/strict";

const params = (template) => [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

export function assertTablesMatch(tables) {
  assert.deepEqual(Object.keys(tables.zh).sort(), Object.keys(tables.en).sort());
  for (const [key, template] of Object.entries(tables.en)) {
    assert.deepEqual(params(tables.zh[key]), params(template), key);
  }
}
