"""Throughput of three gateway instances against one, on one Redis (issue 9).

    .venv/bin/python java-gateway/bench/scale_out.py          # from the repository root

Starts a redis-server, synthetic_upstream.py and three gateway jars (GATEWAY_LIMITS_STORE=redis, all on
that Redis; each its own H2 file holding the same bench key, so they share one key's limits), warms each
up, then alternates the same load through gateway 1 alone and through the three in turn (round-robin, as
a load balancer would), `--repeats` times. All three run in both cases, so the idle ones cost the same.
Prints events/s, completed streams/s and the ratio three/one per repeat and as medians.

Everything (client, upstream, Redis, the JVMs) shares this machine's cores: the ratio says how far the
instances scale on this machine, not on one host per instance.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sse_load  # noqa: E402
from bench_gateway import (BENCH_KEY, ROOT, Process, free_port, java_version, start_gateway,  # noqa: E402
                           start_python_server, workspace)
from synthetic_upstream import run as run_loop  # noqa: E402


def start_redis(work: Path) -> tuple[Process, int]:
    port = free_port()
    redis = Process("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], work / "redis.log")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
        if ping.stdout.strip() == "PONG":
            return redis, port
        time.sleep(0.1)
    redis.stop()
    raise RuntimeError("redis-server did not start")


async def bench(args: argparse.Namespace, urls: list[str]) -> list[dict]:
    for url in urls:  # JIT and connections of every instance
        for _ in range(args.warmup_rounds):
            await sse_load.run_streams(url, args.streams, args.events, api_key=BENCH_KEY, ramp_s=args.ramp)
    rows = []
    for repeat in range(args.repeats):
        row = {}
        for name, targets in (("one", urls[:1]), ("three", urls)):
            result = await sse_load.run_streams(targets, args.streams, args.events, api_key=BENCH_KEY,
                                                ramp_s=args.ramp)
            row[name] = {"events_per_s": result["events_per_s"],
                         "streams_per_s": result["streams_ok"] / result["wall_s"],
                         "ok": result["streams_ok"], "errors": result["errors"][:1]}
        rows.append(row)
        print(f"repeat {repeat + 1}: one {row['one']['events_per_s']:,.0f} ev/s "
              f"({row['one']['ok']}/{args.streams} ok), three {row['three']['events_per_s']:,.0f} ev/s "
              f"({row['three']['ok']}/{args.streams} ok), ratio "
              f"{row['three']['events_per_s'] / row['one']['events_per_s']:.2f} "
              f"{row['one']['errors'] + row['three']['errors']}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200.0,
                        help="events/s per stream: high enough that one instance cannot keep up")
    parser.add_argument("--ramp", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup-rounds", type=int, default=2)
    parser.add_argument("--jar", type=Path, default=ROOT / "java-gateway" / "target" / "java-gateway.jar")
    parser.add_argument("--gateway-jvm-opts", default="-Xmx384m -XX:+UseG1GC")
    args = parser.parse_args()
    if not args.jar.exists():
        print(f"{args.jar} missing: cd java-gateway && mvn -B -q -DskipTests package", file=sys.stderr)
        return 2
    if not shutil.which("redis-server"):
        print("redis-server missing (make redis)", file=sys.stderr)
        return 2

    with workspace("scale-bench-") as (work, processes):
        redis, redis_port = start_redis(work)
        processes.append(redis)
        upstream, upstream_port = start_python_server(work, "upstream", "synthetic_upstream.py",
                                                      "--events-per-second", str(args.rate))
        processes.append(upstream)
        shared = {"GATEWAY_LIMITS_STORE": "redis", "GATEWAY_REDIS_URL": f"redis://127.0.0.1:{redis_port}",
                  "GATEWAY_HEALTH_INTERVAL": "0"}
        urls = []
        for i in range(3):
            gateway, url = start_gateway(work, args.jar, upstream_port, args.gateway_jvm_opts.split(),
                                         extra_env=shared, name=f"gateway{i + 1}")
            processes.append(gateway)
            urls.append(url)
        load_before = os.getloadavg()[0]
        rows = run_loop(bench(args, urls))
        load_after = os.getloadavg()[0]

        def median(name: str, key: str) -> float:
            return statistics.median(r[name][key] for r in rows)

        print(f"\n{os.cpu_count()} CPUs; 1-minute load average {load_before:.1f} before, {load_after:.1f} after; "
              f"{java_version()} ({args.gateway_jvm_opts}); {args.streams} streams x {args.events} events at "
              f"{args.rate:g} events/s per stream, started over {args.ramp} s; medians of {args.repeats}")
        print("| instances | events/s | streams/s | streams ok |")
        print("|---|---|---|---|")
        for name, n in (("one", 1), ("three", 3)):
            ok = sum(r[name]["ok"] for r in rows)
            print(f"| {n} | {median(name, 'events_per_s'):,.0f} | {median(name, 'streams_per_s'):,.1f} | "
                  f"{ok}/{args.streams * args.repeats} |")
        ratios = [r["three"]["events_per_s"] / r["one"]["events_per_s"] for r in rows]
        print(f"\nthree / one events/s: {statistics.median(ratios):.2f} (per repeat: "
              + ", ".join(f"{x:.2f}" for x in ratios) + ")")
        return 0


if __name__ == "__main__":
    sys.exit(main())
