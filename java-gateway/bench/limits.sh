#!/usr/bin/env bash
# Limiter cost and exactness, memory vs Redis (docs/benchmarks-gateway.md): starts a redis-server on a
# free port, runs LimitStoreBench from the test classes, stops the server. Args: streams, requests per
# stream, instances, ms each admitted request holds its slot, measured rounds, burst or spread (defaults 200 20 3 100 3 burst).
# REDIS_CPU=1 BENCH_CPUS=0: redis-server pinned to its own core (taskset), the limiters to the other.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v redis-server >/dev/null || { echo "redis-server missing: make redis" >&2; exit 1; }
mvn -B -q -Dstyle.color=never test-compile dependency:build-classpath -Dmdep.outputFile=target/bench.classpath
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pin_redis=(); pin_bench=()
[ -n "${REDIS_CPU:-}" ] && pin_redis=(taskset -c "$REDIS_CPU")
[ -n "${BENCH_CPUS:-}" ] && pin_bench=(taskset -c "$BENCH_CPUS")
"${pin_redis[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
redis_pid=$!
trap 'kill "$redis_pid"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
echo "redis-server on cpus: $(taskset -cp "$redis_pid" | sed 's/.*: //'), limiters on: ${BENCH_CPUS:-all}; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"${pin_bench[@]}" java -cp "target/test-classes:target/classes:$(cat target/bench.classpath)" \
  dev.llmrelay.gateway.ratelimit.LimitStoreBench "redis://127.0.0.1:$port" "${1:-200}" "${2:-20}" "${3:-3}" "${4:-100}" "${5:-3}" "${6:-burst}" \
  2> >(grep -v -e '^SLF4J' -e 'DEBUG' >&2)
