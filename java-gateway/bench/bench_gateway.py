"""Gateway relay benchmark (issue 4): the same streaming load directly against a synthetic
upstream, through java-gateway, and through LiteLLM proxy, in one run.

    .venv/bin/python java-gateway/bench/bench_gateway.py          # from the repository root

Starts synthetic_upstream.py, the gateway jar and LiteLLM on free loopback ports, warms
each path up, then for each N (default 50 and 200) and each repeat runs N concurrent
streams of 100 events at 50 events/s per stream on every path, interleaved. Writes the
results table into docs/benchmarks-gateway.md (between the bench markers) and every raw
run into bench-results/gateway.json. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sse_load  # noqa: E402
from synthetic_upstream import run as run_loop  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parents[1]
BENCH_KEY = "bench-key-not-a-secret"
# LiteLLM refuses to start without a master key; with no database it checks it in memory.
LITELLM_MASTER_KEY = "sk-bench-litellm-master-key-not-a-secret-0123456789abcdef"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


@contextlib.contextmanager
def workspace(prefix: str):
    """A temporary directory and a list for the processes a run starts; on leaving, every process is
    stopped (the last started first) and the directory removed."""
    processes: list[Process] = []
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work, processes
    finally:
        for process in reversed(processes):
            process.stop()
        shutil.rmtree(work, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http_ok(url: str, process: subprocess.Popen, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited ({process.returncode})\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not healthy after {timeout_s:.0f}s\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Process:
    """A child in its own process group, so it and its workers stop together."""

    def __init__(self, name: str, command: list[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None):
        self.name, self.log = name, log
        self.popen = subprocess.Popen(
            command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


def process_tree(pid: int) -> list[int]:
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                queue += [int(c) for c in task.read_text().split()]
            except OSError:
                pass
    return pids


def rss_bytes(pid: int) -> int:
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError):
            pass
    return total


async def measured_run(target: dict, streams: int, events: int, ramp_s: float,
                       watched: dict[str, int]) -> dict:
    """One load run, sampling the RSS of the relay (peak) and every process's CPU time."""
    peak = {"rss": 0}
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            if target.get("pid"):
                peak["rss"] = max(peak["rss"], rss_bytes(target["pid"]))
            await asyncio.sleep(0.1)

    cpu_before = {name: cpu_seconds(pid) for name, pid in watched.items()}
    client_before = time.process_time()
    sampler = asyncio.create_task(sample())
    result = await sse_load.run_streams(target["url"], streams, events, api_key=target.get("key"), ramp_s=ramp_s)
    stop.set()
    await sampler
    result["cpu_s"] = {name: round(cpu_seconds(pid) - cpu_before[name], 2) for name, pid in watched.items()}
    result["cpu_s"]["client"] = round(time.process_time() - client_before, 2)
    result["relay_rss_peak_mib"] = round(peak["rss"] / 2**20, 1) if target.get("pid") else None
    result["relay_rss_after_mib"] = round(rss_bytes(target["pid"]) / 2**20, 1) if target.get("pid") else None
    return result


def start_python_server(work: Path, name: str, script: str, *args: str) -> tuple[Process, int]:
    """Starts one of the bench's own servers; they print "PORT <n>" once listening."""
    log = work / f"{name}.log"
    process = Process(name, [sys.executable, "-u", str(BENCH_DIR / script), "--port", "0", *args], log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for line in tail(log).splitlines():
            if line.startswith("PORT "):
                return process, int(line.split()[1])
        time.sleep(0.1)
    process.stop()
    raise RuntimeError(f"{script} did not start\n{tail(log)}")


def start_gateway(work: Path, jar: Path, upstream_port: int, jvm_opts: list[str],
                  extra_env: dict[str, str] | None = None, name: str = "gateway",
                  java: str | None = None) -> tuple[Process, str]:
    port = free_port()
    java = java or shutil.which("java") or "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"
    env = dict(os.environ,
               SERVER_PORT=str(port),
               GATEWAY_UPSTREAMS=f"http://127.0.0.1:{upstream_port}",
               GATEWAY_DB_URL=f"jdbc:h2:file:{work}/{name}-db",
               GATEWAY_BOOTSTRAP_KEY=BENCH_KEY,
               GATEWAY_WEB_DIR="",
               # Limits far above the offered load: this measures the relay, not the limiter.
               GATEWAY_DEFAULT_REQUESTS_PER_MINUTE="1000000",
               GATEWAY_DEFAULT_TOKENS_PER_MINUTE="1000000000",
               GATEWAY_DEFAULT_MAX_CONCURRENT_STREAMS="100000",
               **(extra_env or {}))
    gateway = Process(name, [java, *jvm_opts, "-jar", str(jar)], work / f"{name}.log", env=env, cwd=work)
    base = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{base}/actuator/health", gateway.popen, 180, gateway.log)
    return gateway, base


def start_litellm(work: Path, venv: Path, upstream_port: int, workers: int) -> tuple[Process, str]:
    port = free_port()
    config = work / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: synthetic\n"
        "    litellm_params:\n"
        "      model: openai/synthetic\n"
        f"      api_base: http://127.0.0.1:{upstream_port}/v1\n"
        "      api_key: unused\n"
    )
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR",
               LITELLM_TELEMETRY="False", NO_DOCKER="True", LITELLM_MASTER_KEY=LITELLM_MASTER_KEY)
    litellm = Process("litellm", [str(venv / "bin" / "litellm"), "--config", str(config),
                                  "--host", "127.0.0.1", "--port", str(port), "--num_workers", str(workers)],
                      work / "litellm.log", env=env, cwd=work)
    base = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{base}/health/liveliness", litellm.popen, 180, litellm.log)
    return litellm, base


def litellm_version(venv: Path) -> str:
    try:
        out = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import importlib.metadata as m; print(m.version('litellm'))"],
                             capture_output=True, text=True, timeout=60)
        return out.stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def combine(runs: list[dict]) -> dict:
    """Medians over repeats for rates and latencies; sums for lost/reordered/errors."""
    combined = {key: median_of(runs, key) for key in (
        "events_per_s", "latency_ms_p50", "latency_ms_p99", "ttft_ms_p50", "ttft_ms_p99",
        "relay_rss_peak_mib", "wall_s")}
    for key in ("lost", "reordered", "duplicated", "error_count", "events_expected", "events_received",
                "streams_ok", "streams", "usage_chunks"):
        combined[key] = sum(r[key] for r in runs)
    combined["relay_cpu_s"] = median_of([{"v": r["cpu_s"].get("relay")} for r in runs], "v")
    combined["errors"] = sorted({e for r in runs for e in r["errors"]})[:3]
    return combined


def minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def render(summary: dict, meta: dict) -> str:
    lines = [
        f"Run {meta['date']} on {meta['machine']}; {meta['python']}; {meta['java']}; "
        f"LiteLLM {meta['litellm']}; every process at niceness {meta['nice']}. "
        f"Command: `{meta['command']}`.",
        "",
        f"Load: N concurrent streams, {meta['events']} events each at {fmt(meta['rate'], 0)} events/s "
        f"per stream, started evenly over {meta['ramp_s']} s; {meta['repeats']} repeats per cell, "
        "interleaved across paths (medians; lost/reordered summed). Latency is per event, from the "
        "upstream's write to the client's read; *added* is the path's percentile minus the direct "
        "path's. CPU is the relay process's own CPU seconds per run.",
        "",
        "| N | path | events/s | vs direct | vs LiteLLM | latency p50 / p99 ms | added p50 / p99 ms "
        "| TTFT p50 / p99 ms | relay RSS peak MiB | relay CPU s | lost / reordered / dup | streams ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, paths in summary.items():
        direct = paths.get("direct")
        litellm = paths.get("litellm")
        for name, row in paths.items():
            vs_direct = ratio(row["events_per_s"], direct["events_per_s"]) if direct and name != "direct" else None
            vs_litellm = ratio(row["events_per_s"], litellm["events_per_s"]) if litellm and name == "gateway" else None
            added = ("–" if name == "direct" or not direct else
                     f"{fmt(minus(row['latency_ms_p50'], direct['latency_ms_p50']), 2)} / "
                     f"{fmt(minus(row['latency_ms_p99'], direct['latency_ms_p99']), 2)}")
            lines.append(
                f"| {n} | {name} | {fmt(row['events_per_s'], 0)} | "
                f"{'–' if vs_direct is None else f'{vs_direct:.1%}'} | "
                f"{'–' if vs_litellm is None else f'{vs_litellm:.2f}x'} | "
                f"{fmt(row['latency_ms_p50'], 2)} / {fmt(row['latency_ms_p99'], 2)} | {added} | "
                f"{fmt(row['ttft_ms_p50'])} / {fmt(row['ttft_ms_p99'])} | "
                f"{fmt(row['relay_rss_peak_mib'], 0)} | {fmt(row['relay_cpu_s'], 2)} | "
                f"{row['lost']} / {row['reordered']} / {row['duplicated']} | "
                f"{row['streams_ok']}/{row['streams']} |")
    errors = [f"- {n} {name}: {e}" for n, paths in summary.items() for name, row in paths.items()
              for e in row["errors"]]
    if errors:
        lines += ["", "Errors seen:", *errors]
    lines += ["", *targets(summary)]
    return "\n".join(lines)


def targets(summary: dict) -> list[str]:
    top = summary.get(max(summary, key=int)) if summary else None
    if not top or "gateway" not in top:
        return ["Targets: not evaluated (the gateway was not measured)."]
    gw, direct, litellm = top["gateway"], top["direct"], top.get("litellm")
    n = max(summary, key=int)
    vs_direct = ratio(gw["events_per_s"], direct["events_per_s"]) or 0.0
    added_p99 = minus(gw["latency_ms_p99"], direct["latency_ms_p99"])
    checks = [
        (f"zero lost or reordered events at {n} streams",
         gw["lost"] == 0 and gw["reordered"] == 0 and gw["duplicated"] == 0,
         f"{gw['lost']} lost, {gw['reordered']} reordered, {gw['duplicated']} duplicated"),
        ("at least 90% of the direct events/s", vs_direct >= 0.9, f"{vs_direct:.1%}"),
        ("added p99 latency at most 20 ms over direct", added_p99 is not None and added_p99 <= 20,
         f"{fmt(added_p99, 2)} ms"),
    ]
    if litellm:
        vs_litellm = ratio(gw["events_per_s"], litellm["events_per_s"])
        checks.append(("at least 4x LiteLLM's events/s", vs_litellm is not None and vs_litellm >= 4,
                       "–" if vs_litellm is None else f"{vs_litellm:.2f}x"))
    return [f"Targets at {n} streams (issue 4):", ""] + [
        f"- {'met' if ok else 'NOT met'}: {text} ({value})" for text, ok, value in checks]


def write_doc(doc: Path, block: str) -> None:
    write_doc_between(doc, BEGIN, END, block)


def write_doc_between(doc: Path, begin: str, end: str, block: str) -> None:
    """Replaces what lies between the markers `begin` and `end` (added at the end when missing)."""
    text = doc.read_text() if doc.exists() else f"# Gateway relay benchmark\n\n{begin}\n{end}\n"
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, after = rest.split(end, 1)
    doc.write_text(f"{head}{begin}\n{block}\n{end}{after}")


def java_version(java: str | None = None) -> str:
    java = java or shutil.which("java") or "java"
    out = subprocess.run([java, "-version"], capture_output=True, text=True)
    first = (out.stderr or out.stdout).splitlines()
    return first[0].replace('"', "") if first else "java ?"


async def bench(args: argparse.Namespace, targets_: list[dict], watched: dict[str, int]) -> dict:
    for target in targets_:  # warm-up: connections, LiteLLM's router, and the JVM's JIT
        rounds = args.warmup_rounds if target["name"].startswith("gateway") else 1
        for n in (20, *[max(args.streams)] * rounds):
            warm = await sse_load.run_streams(target["url"], n, args.events, api_key=target.get("key"),
                                              ramp_s=args.ramp)
            print(f"warm-up {target['name']:8} N={n:<4} ok={warm['streams_ok']}/{n} "
                  f"errors={warm['errors'][:1]}", flush=True)
    runs: dict[str, dict[str, list[dict]]] = {str(n): {t["name"]: [] for t in targets_} for n in args.streams}
    for repeat in range(args.repeats):
        for n in args.streams:
            for target in targets_:
                watched_here = dict(watched)
                if target.get("pid"):
                    watched_here["relay"] = target["pid"]
                result = await measured_run(target, n, args.events, args.ramp, watched_here)
                runs[str(n)][target["name"]].append(result)
                print(f"run {repeat + 1}/{args.repeats} N={n:<4} {target['name']:8} "
                      f"{result['events_per_s']:8.0f} ev/s  p50 {fmt(result['latency_ms_p50'], 2)} ms  "
                      f"p99 {fmt(result['latency_ms_p99'], 2)} ms  ttft p50 {fmt(result['ttft_ms_p50'])} ms  "
                      f"lost {result['lost']} reordered {result['reordered']}  ok {result['streams_ok']}/{n}  "
                      f"cpu {result['cpu_s']}", flush=True)
                await asyncio.sleep(0.5)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=lambda s: [int(x) for x in s.split(",")], default=[50, 200])
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0, help="events/s per stream")
    parser.add_argument("--ramp", type=float, default=0.5, help="seconds over which streams start")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup-rounds", type=int, default=3,
                        help="warm-up runs at the largest N for the gateway (JIT); other paths get one")
    parser.add_argument("--jar", type=Path, default=ROOT / "java-gateway" / "target" / "java-gateway.jar")
    parser.add_argument("--gateway-jvm-opts", default="-Xmx1g -XX:+UseG1GC")
    parser.add_argument("--java", default=None, help="java binary for the gateways (default: java on PATH)")
    parser.add_argument("--baseline-jar", type=Path, default=None,
                        help="also run this jar as path 'gateway-baseline' (an older build), in the same run")
    parser.add_argument("--traced-path", action="store_true",
                        help="also run the jar with tracing on as path 'gateway-traced', exporting every span over "
                             "OTLP to a sink process (otlp_sink.py)")
    parser.add_argument("--virtual-threads-path", action="store_true",
                        help="also run the jar with spring.threads.virtual.enabled as 'gateway-vt' (JDK 21+)")
    parser.add_argument("--litellm-venv", type=Path, default=Path(os.environ.get("LITELLM_VENV", "/tmp/litellm-venv")))
    parser.add_argument("--litellm-workers", type=int, default=1, help="LiteLLM's --num_workers (its default: 1)")
    parser.add_argument("--skip-gateway", action="store_true")
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--skip-forward", action="store_true", help="leave out the TCP-forwarder control")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks-gateway.md")
    parser.add_argument("--json", type=Path, default=ROOT / "bench-results" / "gateway.json")
    parser.add_argument("--no-doc", action="store_true", help="print the table, leave the doc alone")
    parser.add_argument("--nice", type=int, default=0,
                        help="niceness increment for this run and every process it starts (negative needs "
                             "root): the same priority for all paths, less interference from other work")
    args = parser.parse_args()
    if args.nice:
        os.nice(args.nice)  # inherited by the upstream, the relays and their threads

    with workspace("gateway-bench-") as (work, processes):
        upstream, upstream_port = start_python_server(work, "upstream", "synthetic_upstream.py",
                                                      "--events-per-second", str(args.rate))
        processes.append(upstream)
        targets_ = [{"name": "direct", "url": f"http://127.0.0.1:{upstream_port}"}]
        if not args.skip_forward:
            forwarder, port = start_python_server(work, "forwarder", "tcp_forwarder.py",
                                                  "--target-port", str(upstream_port))
            processes.append(forwarder)
            targets_.append({"name": "tcp-forward", "url": f"http://127.0.0.1:{port}", "pid": forwarder.pid})
        if not args.skip_gateway:
            if not args.jar.exists():
                print(f"{args.jar} missing: build it with `cd java-gateway && mvn -B -q -DskipTests package`",
                      file=sys.stderr)
                return 2
            gateway, url = start_gateway(work, args.jar, upstream_port, args.gateway_jvm_opts.split(), java=args.java)
            processes.append(gateway)
            targets_.append({"name": "gateway", "url": url, "key": BENCH_KEY, "pid": gateway.pid})
            variants = []
            if args.baseline_jar:
                variants.append(("gateway-baseline", args.baseline_jar, None))
            if args.virtual_threads_path:
                variants.append(("gateway-vt", args.jar, {"SPRING_THREADS_VIRTUAL_ENABLED": "true"}))
            sink_port = None
            if args.traced_path:
                sink, sink_port = start_python_server(work, "otlp-sink", "otlp_sink.py")
                processes.append(sink)
                variants.append(("gateway-traced", args.jar, {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}"}))
            for name, jar, env in variants:
                variant, url = start_gateway(work, jar, upstream_port, args.gateway_jvm_opts.split(), env, name=name,
                                             java=args.java)
                processes.append(variant)
                targets_.append({"name": name, "url": url, "key": BENCH_KEY, "pid": variant.pid})
        if not args.skip_litellm:
            if not (args.litellm_venv / "bin" / "litellm").exists():
                print(f"no LiteLLM at {args.litellm_venv}: python3 -m venv {args.litellm_venv} && "
                      f"{args.litellm_venv}/bin/pip install 'litellm[proxy]'  (or --skip-litellm)", file=sys.stderr)
                return 2
            litellm, url = start_litellm(work, args.litellm_venv, upstream_port, args.litellm_workers)
            processes.append(litellm)
            targets_.append({"name": "litellm", "url": url, "key": LITELLM_MASTER_KEY, "pid": litellm.pid})
        watched = {"upstream": upstream.pid}
        load_before = os.getloadavg()[0]
        runs = run_loop(bench(args, targets_, watched))
        load_after = os.getloadavg()[0]
        if not args.skip_gateway and sink_port:
            with urllib.request.urlopen(f"http://127.0.0.1:{sink_port}/stats", timeout=10) as answer:
                print(f"OTLP sink (gateway-traced): {json.loads(answer.read())}", flush=True)
        summary = {n: {name: combine(r) for name, r in paths.items()} for n, paths in runs.items()}
        meta = {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
                       f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, "
                       "client, upstream and relays all on the same cores; 1-minute load average "
                       f"{load_before:.1f} before and {load_after:.1f} after (other work on the machine)",
            "python": f"Python {platform.python_version()}",
            "java": java_version(args.java) + f" ({args.gateway_jvm_opts})",
            "litellm": "not run" if args.skip_litellm else
                       f"{litellm_version(args.litellm_venv)} ({args.litellm_workers} worker(s))",
            "command": shlex.join(["python", "java-gateway/bench/bench_gateway.py", *sys.argv[1:]]),
            "events": args.events, "rate": args.rate, "ramp_s": args.ramp, "repeats": args.repeats,
            "nice": os.nice(0),
        }
        block = render(summary, meta)
        print("\n" + block)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=1))
        if not args.no_doc:
            write_doc(args.doc, block)
            print(f"\nwrote {args.doc.relative_to(ROOT)} and {args.json.relative_to(ROOT)}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
