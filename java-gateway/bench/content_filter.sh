#!/usr/bin/env bash
# Content-filter cost per chunk (docs/benchmarks-gateway.md): runs ContentFilterBench from the test
# classes. Args: words in the list, concurrent streams, chunks per stream (defaults 50000 200 500).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mvn -B -q -Dstyle.color=never test-compile dependency:build-classpath -Dmdep.outputFile=target/bench.classpath
java -cp "target/test-classes:target/classes:$(cat target/bench.classpath)" \
  dev.llmrelay.gateway.safety.ContentFilterBench "${1:-50000}" "${2:-200}" "${3:-500}" \
  2> >(grep -v -e '^SLF4J' -e 'DEBUG' >&2)
