#!/usr/bin/env bash
# Usage reports over generated request rows, request rows vs hourly rollups, on H2 and PostgreSQL
# (docs/benchmarks-gateway.md, "Usage reports at 10 million rows"). Args: rows (10000000), h2|postgres|both.
# Run it alone: it takes a few minutes and both cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mvn -B -q -Dstyle.color=never test-compile dependency:build-classpath -Dmdep.outputFile=target/bench.classpath
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
java -Xmx4g -cp "target/test-classes:target/classes:$(cat target/bench.classpath)" \
  dev.llmrelay.gateway.usage.UsageReportBench "${1:-10000000}" "${2:-both}" 2> >(grep -v -e '^SLF4J' -e 'DEBUG' >&2)
