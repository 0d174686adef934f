#!/usr/bin/env bash
# Runs every suite, even after one fails, then prints one summary line; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1

passed=(); failed=()
suite() {  # name, command...
  local name=$1; shift
  echo; echo "=== $name: $*"
  local started=$SECONDS
  if "$@"; then passed+=("$name"); else failed+=("$name"); fi
  echo "=== $name took $((SECONDS - started)) s"
}

suite model-service bash -c 'cd model-service && ../.venv/bin/python -m pytest -q -p no:cacheprovider'
suite java-gateway bash -c 'cd java-gateway && mvn -B -ntp -Dstyle.color=never test'
suite web-unit node --test web/tests/ web/console/tests/
suite cross-tier .venv/bin/python -m pytest -q -p no:cacheprovider tests --ignore=tests/browser --ignore=tests/fuzz
# Schemathesis over both tiers' OpenAPI documents; fails on any finding (tests/fuzz/test_fuzz.py).
suite fuzz .venv/bin/python -m pytest -q -p no:cacheprovider tests/fuzz
# Its own process: Playwright's sync API keeps an event loop on the main thread for the session.
suite browser .venv/bin/python -m pytest -q -p no:cacheprovider tests/browser

echo
[ ${#failed[@]} -eq 0 ] || echo "failed suites: ${failed[*]}"
echo "suites: ${#passed[@]} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
