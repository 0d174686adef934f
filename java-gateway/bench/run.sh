#!/usr/bin/env bash
# The gateway relay benchmark in one command: builds the gateway jar when it is missing or
# older than its sources, installs LiteLLM into its own venv (never the project's .venv)
# when missing, then runs bench_gateway.py. Extra arguments go to bench_gateway.py.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python=python3

# GATEWAY_JAR: benchmark a jar built elsewhere (no build step).
jar="${GATEWAY_JAR:-$root/java-gateway/target/java-gateway.jar}"
if [ -z "${GATEWAY_JAR:-}" ] && { [ ! -f "$jar" ] || [ -n "$(find "$root/java-gateway/src/main" "$root/java-gateway/pom.xml" -newer "$jar" -print -quit)" ]; }; then
  echo "building $jar" >&2
  (cd "$root/java-gateway" && mvn -B -q -Dmaven.test.skip=true package)
fi

litellm_venv="${LITELLM_VENV:-/tmp/litellm-venv}"
if [ ! -x "$litellm_venv/bin/litellm" ]; then
  echo "installing LiteLLM into $litellm_venv" >&2
  python3 -m venv "$litellm_venv"
  "$litellm_venv/bin/pip" install -q 'litellm[proxy]'
fi

exec "$python" "$root/java-gateway/bench/bench_gateway.py" --jar "$jar" --litellm-venv "$litellm_venv" "$@"
