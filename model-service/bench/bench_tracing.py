"""What tracing costs the model-service: the same streaming load against the service with tracing off (no OTLP
endpoint) and on (exporting every request's spans to an OTLP receiver in this process), alternated off/on/on/off so
drift on a shared machine hits both alike. Per cell: the decoding step as the server measures it (the mean of
vllm:inter_token_latency_seconds over the cell's tokens), client tokens/s and TTFT, and the spans received.

    cd model-service && ../.venv/bin/python bench/bench_tracing.py --concurrency 1,8 --max-tokens 64 --rounds 4

Run it alone: two-thread torch slows by half when anything else runs. Prints the load average beside each cell."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "tests"))  # the OTLP receiver the tests use
sys.path.insert(0, str(HERE.parent / "src"))

from bench_serving import DEFAULT_MODEL, http_level, start_ours  # noqa: E402
from otlp_receiver import OtlpReceiver  # noqa: E402

ITL = "vllm:inter_token_latency_seconds"


def itl_totals(metrics: str) -> tuple[float, float]:
    """(sum, count) of the inter-token histogram, over its model_name series."""
    total = count = 0.0
    for line in metrics.splitlines():
        if line.startswith(ITL + "_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(ITL + "_count"):
            count += float(line.rsplit(" ", 1)[1])
    return total, count


async def cell(server, n: int, max_tokens: int, waves: int) -> dict:
    async with httpx.AsyncClient(timeout=30) as client:
        before = itl_totals((await client.get(server.base_url + "/metrics")).text)
        load = os.getloadavg()[0]
        tokens, wall, ttfts = 0, 0.0, []
        for _ in range(waves):
            seconds, streams = await http_level(server, n, max_tokens, None)
            wall += seconds
            tokens += sum(s.completion_tokens for s in streams)
            ttfts += [s.ttft for s in streams if s.ttft is not None]
        after = itl_totals((await client.get(server.base_url + "/metrics")).text)
    step_ms = (after[0] - before[0]) / max(1.0, after[1] - before[1]) * 1000
    return {"n": n, "step_ms": step_ms, "tok_s": tokens / wall, "ttft_ms": statistics.median(ttfts) * 1000,
            "load": load}


def span_work_us(requests: int = 2000) -> float:
    """Microseconds one request's span work costs the serving path (start, attributes, three phase spans, end, the
    batch processor's enqueue), measured in this process with the SDK as the service builds it."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from model_service.engine.base import RequestTimings
    from model_service.tracing import ChoiceEnd, Tracing

    tracing = Tracing(environ={}, exporter=InMemorySpanExporter())
    timings = RequestTimings(queue=0.001, prefill=0.05, decode=3.0, e2e=3.051, finish_reason="length")
    t0 = time.perf_counter()
    for i in range(requests):
        span = tracing.start_generation("chat", "m", f"r{i}", requested_model=None, max_tokens=64, temperature=0.0,
                                        top_p=1.0, n=1, start_ns=time.time_ns())
        span.end(status=200, response_id="chatcmpl-x", input_tokens=20, output_tokens=64, ttft_s=0.05,
                 started_ns=time.time_ns(), choices=[ChoiceEnd("length", timings)])
    elapsed = time.perf_counter() - t0
    tracing.shutdown()
    return elapsed / requests * 1e6


async def run(args) -> int:
    levels = [int(x) for x in args.concurrency.split(",")]
    work = span_work_us()
    print(f"span work per request on the serving path: {work:.0f} us "
          f"({work / args.max_tokens:.2f} us per token at {args.max_tokens} tokens)", flush=True)
    results: dict[tuple[str, int], list[dict]] = {}
    spans = 0
    with OtlpReceiver() as receiver, tempfile.TemporaryDirectory(prefix="bench-tracing-") as logs:
        for round_ in range(args.rounds):
            for mode in ("off", "on") if round_ % 2 == 0 else ("on", "off"):  # ABBA: linear drift cancels
                env = [f"OTEL_EXPORTER_OTLP_ENDPOINT={receiver.endpoint if mode == 'on' else ''}",
                       "MODEL_SERVICE_DTYPE=float32"]
                server = start_ours(Path(args.model_path), Path(logs), 32, env)
                try:
                    await server.wait_ready(300)
                    await http_level(server, 2, 8, None)  # warm-up
                    for n in levels:
                        row = await cell(server, n, args.max_tokens, args.waves)
                        results.setdefault((mode, n), []).append(row)
                        print(f"round {round_ + 1} tracing {mode:3} n={n:2}: step {row['step_ms']:.2f} ms, "
                              f"{row['tok_s']:.1f} tok/s, TTFT p50 {row['ttft_ms']:.0f} ms (load {row['load']:.2f})",
                              flush=True)
                finally:
                    server.stop()
        time.sleep(1)  # the last batch of spans
        spans = len(receiver.spans)
    print(f"\nspans received from the traced runs: {spans}")
    print("\n| streams | decoding step off / on ms | on/off | tok/s off / on | on/off | TTFT p50 off / on ms | load |")
    print("|---|---|---|---|---|---|---|")
    for n in levels:
        off, on = results[("off", n)], results[("on", n)]

        def med(rows, key):
            return statistics.median(r[key] for r in rows)
        loads = [r["load"] for r in off + on]
        print(f"| {n} | {med(off, 'step_ms'):.2f} / {med(on, 'step_ms'):.2f} | "
              f"{med(on, 'step_ms') / med(off, 'step_ms'):.3f} | {med(off, 'tok_s'):.1f} / {med(on, 'tok_s'):.1f} | "
              f"{med(on, 'tok_s') / med(off, 'tok_s'):.3f} | {med(off, 'ttft_ms'):.0f} / {med(on, 'ttft_ms'):.0f} | "
              f"{min(loads):.2f}-{max(loads):.2f} |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", default=str(DEFAULT_MODEL))
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--waves", type=int, default=3, help="rounds of n streams per cell")
    parser.add_argument("--rounds", type=int, default=4, help="off/on pairs, in the order off-on, on-off, ...")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
