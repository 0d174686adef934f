#!/usr/bin/env python3
"""Overload benchmark of the gateway's adaptive concurrency limit (issue 11, degradation).

A synthetic model with `--capacity` batch slots (synthetic_upstream.py: a stream beyond them
waits for a slot, then `--first-token-ms` of prefill) sits behind the real gateway jar. First
one client at a time measures the unloaded time to first token (TTFT); then `--factor` x
capacity clients in a closed loop (a shed client retries after `--retry-ms`) for `--seconds`.
It prints, for each gateway setting, the admitted requests' TTFT against the unloaded one,
how many were shed and how fast a shed answer came back, and any other status. Settings:
the limit off (everything piles into the model's queue), pinned at the capacity
(min = max), and adaptive (Gradient2 between 1 and 4 x capacity, starting at the capacity,
with the default tolerance 1.5 and with 1.1).

    java-gateway/bench/degrade_overload.py [--jar java-gateway/target/java-gateway.jar] [--doc]

`--doc` writes the table into docs/benchmarks-gateway.md between the degrade-bench markers.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sse_load  # noqa: E402
from bench_gateway import BENCH_KEY, ROOT, start_gateway, start_python_server, write_doc_between  # noqa: E402
from synthetic_upstream import run as run_loop  # noqa: E402


async def timed_stream(host: str, port: int, request: bytes) -> tuple[sse_load.StreamResult, float]:
    started = time.monotonic_ns()
    result = await sse_load.one_stream(host, port, request, 0, 60)
    return result, (time.monotonic_ns() - started) / 1e6


async def unloaded(base: str, events: int, count: int) -> list[float]:
    host, port, request = sse_load.request_bytes(base, events, BENCH_KEY, "synthetic")
    ttfts = []
    for _ in range(count):
        result, _ = await timed_stream(host, port, request)
        if result.status == 200 and result.ttft_ns is not None:
            ttfts.append(result.ttft_ns / 1e6)
    return ttfts


async def overload(base: str, events: int, clients: int, seconds: float, retry_ms: float) -> dict:
    host, port, request = sse_load.request_bytes(base, events, BENCH_KEY, "synthetic")
    stop_at = time.monotonic() + seconds
    admitted_ttft, shed_ms, other = [], [], {}

    async def client() -> None:
        while time.monotonic() < stop_at:
            result, elapsed_ms = await timed_stream(host, port, request)
            if result.status == 200 and result.error is None and result.ttft_ns is not None:
                admitted_ttft.append(result.ttft_ns / 1e6)
            elif result.status == 503 and "overloaded" in (result.error or ""):
                shed_ms.append(elapsed_ms)
                await asyncio.sleep(retry_ms / 1000)
            else:
                key = f"{result.status} {(result.error or '')[:80]}"
                other[key] = other.get(key, 0) + 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return {"admitted_ttft": admitted_ttft, "shed_ms": shed_ms, "other": other}


async def sequential_sheds(base: str, capacity: int, count: int) -> list[float]:
    """Fills the pool with `capacity` long streams, then sends `count` requests one at a time: each is
    shed, and its latency is the gateway's shed path alone (no other client competes)."""
    host, port, long_request = sse_load.request_bytes(base, 1000, BENCH_KEY, "synthetic")
    holders = [asyncio.create_task(sse_load.one_stream(host, port, long_request, 0, 60)) for _ in range(capacity)]
    await asyncio.sleep(1.0)
    _, _, request = sse_load.request_bytes(base, 5, BENCH_KEY, "synthetic")
    latencies = []
    for _ in range(count):
        result, elapsed_ms = await timed_stream(host, port, request)
        if result.status == 503:
            latencies.append(elapsed_ms)
    for holder in holders:
        holder.cancel()
    await asyncio.gather(*holders, return_exceptions=True)
    return latencies


def pct(values: list[float], q: float) -> str:
    value = sse_load.percentile(values, q)
    return "-" if value is None else f"{value:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jar", type=Path, default=ROOT / "java-gateway" / "target" / "java-gateway.jar")
    parser.add_argument("--capacity", type=int, default=8)
    parser.add_argument("--first-token-ms", type=float, default=100)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--rate", type=float, default=50, help="events per second per stream")
    parser.add_argument("--factor", type=int, default=5, help="clients per batch slot")
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--retry-ms", type=float, default=1000,
                        help="a shed client's wait before it retries (Retry-After is 1 s)")
    parser.add_argument("--unloaded", type=int, default=10, help="one-at-a-time streams for the baseline")
    parser.add_argument("--doc", action="store_true", help="write the table into docs/benchmarks-gateway.md")
    parser.add_argument("--only", help="run only the settings whose name starts with this (e.g. pinned)")
    parser.add_argument("--sequential-sheds", type=int, default=200,
                        help="with the limit pinned: requests shed one at a time (the shed path alone)")
    args = parser.parse_args()
    if not args.jar.exists():
        print(f"{args.jar} is missing: cd java-gateway && mvn -B -q -DskipTests package", file=sys.stderr)
        return 2
    c = args.capacity
    settings = [
        ("limit off", {"GATEWAY_DEGRADE_ADAPTIVE_LIMIT": "false"}),
        (f"pinned at {c}", {"GATEWAY_DEGRADE_ADAPTIVE_LIMIT": "true", "GATEWAY_DEGRADE_MIN_LIMIT": str(c),
                            "GATEWAY_DEGRADE_MAX_LIMIT": str(c), "GATEWAY_DEGRADE_INITIAL_LIMIT": str(c)}),
        (f"adaptive 1..{4 * c}, tolerance 1.5", {
            "GATEWAY_DEGRADE_ADAPTIVE_LIMIT": "true", "GATEWAY_DEGRADE_MIN_LIMIT": "1",
            "GATEWAY_DEGRADE_MAX_LIMIT": str(4 * c), "GATEWAY_DEGRADE_INITIAL_LIMIT": str(c),
            "GATEWAY_DEGRADE_RTT_TOLERANCE": "1.5"}),
        (f"adaptive 1..{4 * c}, tolerance 1.1", {
            "GATEWAY_DEGRADE_ADAPTIVE_LIMIT": "true", "GATEWAY_DEGRADE_MIN_LIMIT": "1",
            "GATEWAY_DEGRADE_MAX_LIMIT": str(4 * c), "GATEWAY_DEGRADE_INITIAL_LIMIT": str(c),
            "GATEWAY_DEGRADE_RTT_TOLERANCE": "1.1"}),
    ]
    if args.only:
        settings = [s for s in settings if s[0].startswith(args.only)]
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="degrade-bench-") as tmp:
        work = Path(tmp)
        upstream, upstream_port = start_python_server(
            work, "upstream", "synthetic_upstream.py", "--events-per-second", str(args.rate),
            "--capacity", str(c), "--first-token-ms", str(args.first_token_ms))
        try:
            for name, env in settings:
                run_dir = work / name.replace(" ", "-").replace(".", "")
                run_dir.mkdir()
                gateway, base = start_gateway(run_dir, args.jar, upstream_port, ["-Xmx512m"], env)
                try:
                    run_loop(unloaded(base, args.events, 10))  # JIT warm-up
                    base_ttft = run_loop(unloaded(base, args.events, args.unloaded))
                    result = run_loop(overload(base, args.events, args.factor * c, args.seconds, args.retry_ms))
                    if name.startswith("pinned") and args.sequential_sheds:
                        alone = run_loop(sequential_sheds(base, c, args.sequential_sheds))
                        notes.append(f"Pinned at {c}, pool full, {len(alone)} requests shed one at a time: "
                                     f"shed latency p50 {pct(alone, 50)} ms, p99 {pct(alone, 99)} ms, "
                                     f"max {pct(alone, 100)} ms.")
                        print(notes[-1], flush=True)
                finally:
                    gateway.stop()
                base_p50 = sse_load.percentile(base_ttft, 50)
                adm_p50 = sse_load.percentile(result["admitted_ttft"], 50)
                ratio = "-" if not base_p50 or adm_p50 is None else f"{adm_p50 / base_p50:.2f}x"
                rows.append(
                    f"| {name} | {pct(base_ttft, 50)} | {len(result['admitted_ttft'])} | "
                    f"{pct(result['admitted_ttft'], 50)} / {pct(result['admitted_ttft'], 99)} | {ratio} | "
                    f"{len(result['shed_ms'])} | {pct(result['shed_ms'], 50)} / {pct(result['shed_ms'], 99)} | "
                    f"{sum(result['other'].values())} |")
                print(rows[-1], flush=True)
                if result["other"]:
                    print(f"  other answers: {result['other']}", flush=True)
        finally:
            upstream.stop()
    header = (
        f"Synthetic model: {c} batch slots, {args.first_token_ms:.0f} ms prefill, {args.events} events at "
        f"{args.rate:.0f}/s per stream; {args.factor * c} clients ({args.factor}x) for {args.seconds:.0f} s per "
        f"setting, a shed client retries after {args.retry_ms:.0f} ms.\n\n"
        "| gateway limit | unloaded TTFT p50 ms | admitted streams | admitted TTFT p50 / p99 ms | "
        "admitted p50 / unloaded | shed (503) | shed latency p50 / p99 ms | other answers |\n"
        "|---|---|---|---|---|---|---|---|\n")
    table = header + "\n".join(rows) + "\n" + "".join(f"\n{note}\n" for note in notes)
    print()
    print(table)
    if args.doc:
        write_doc_between(ROOT / "docs" / "benchmarks-gateway.md", "<!-- degrade-bench:begin -->",
                          "<!-- degrade-bench:end -->", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
