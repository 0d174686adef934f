"""Serving benchmark: model-service against three baselines, in one run, on one model directory.

Systems (each started and stopped by this script, on free loopback ports):
  ours  model-service (`python -m model_service`) over HTTP streaming
  a     naive: bench/naive_server.py, one `model.generate` per request under a lock, over HTTP
  b     `transformers serve --continuous-batching`, same KV budget, over HTTP
  c     the bound: in-process `model.generate` on a static left-padded batch, no HTTP
        (run in its own subprocess so its peak RSS is its own)

For each concurrency N, N streams are sent at once (same prompts for every system, greedy,
`max_tokens` new tokens each). Measured: aggregate completion tokens/s (all tokens of the N
streams over the wall time from the first request sent to the last stream finished), TTFT
p50/p95 (request sent -> first non-empty content chunk), peak RSS of the server process
(VmHWM, reset before each level through /proc/<pid>/clear_refs). Streams that stop before
`max_tokens` are reported.

    python bench/bench_serving.py --concurrency 1,4,16,32 --systems ours,a,b,c
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVICE_DIR = HERE.parent
REPO = SERVICE_DIR.parent
DEFAULT_MODEL = REPO / "models" / "smollm2-135m-instruct"

# Greedy decoding of these runs well past 128 tokens with SmolLM2-135M-Instruct (checked per run:
# every stream's completion_tokens is compared with max_tokens and short ones are reported).
TOPICS = [
    "a lighthouse keeper who finds a message in a bottle", "a dragon who is afraid of fire",
    "a robot learning to paint", "two friends crossing a desert", "a city that floats on the sea",
    "a detective cat in Paris", "a girl who can talk to trees", "the last train of the night",
    "a baker who bakes bread for giants", "a pirate searching for a lost map",
    "a boy who builds a rocket in his garden", "a village under a frozen lake",
    "a musician who lost her voice", "an old clock that runs backwards", "a wolf raising a fox cub",
    "a knight who hates swords", "a library where books whisper", "a farmer and a talking cow",
    "a storm that lasted a hundred days", "a scientist who shrinks herself",
    "a king who gave away his crown", "a ghost who wants to make friends",
    "a journey to the centre of the earth", "a mountain climber lost in fog",
    "a small fishing boat in a great storm", "twin sisters separated at birth",
    "a garden that grows at night", "an astronaut stranded on Mars", "a thief who steals only books",
    "a circus elephant who escapes", "a island where it always snows", "a tailor who sews dreams",
]


def prompt_messages(i: int) -> list[dict]:
    topic = TOPICS[i % len(TOPICS)]
    return [{"role": "user", "content": f"Write a long, detailed story about {topic}. "
                                        "Describe every scene and character at length."}]


# -- processes ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_hwm_kib(pid: int) -> int:
    """Peak resident set (VmHWM) of pid and its children, KiB."""
    total = 0
    pids = [pid]
    with contextlib.suppress(Exception):
        import psutil

        pids += [c.pid for c in psutil.Process(pid).children(recursive=True)]
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of pid and its live children (all threads), seconds."""
    import psutil

    total = 0.0
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
    return total


def reset_hwm(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs), so each level has its own peak."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


class Server:
    """A server subprocess in its own process group; always killed on exit."""

    def __init__(self, name: str, argv: list[str], env: dict, port: int, health: str, log_dir: Path):
        self.name, self.argv, self.port, self.health = name, argv, port, health
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=str(SERVICE_DIR))

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def wait_ready(self, timeout: float) -> float:
        import httpx

        deadline = time.perf_counter() + timeout
        async with httpx.AsyncClient(timeout=5) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get(self.base_url + self.health)
                    if r.status_code == 200:
                        return time.perf_counter() - self.started
                await asyncio.sleep(0.5)
        raise TimeoutError(f"{self.name} not ready after {timeout} s; see {self.log_path}")

    async def level(self, n: int, max_tokens: int) -> tuple[float, list[StreamResult]]:
        return await http_level(self, n, max_tokens, None)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


# -- results --------------------------------------------------------------------------
@dataclass
class StreamResult:
    ttft: float | None
    completion_tokens: int
    finish_reason: str | None
    error: str | None = None


@dataclass
class LevelResult:
    system: str
    concurrency: int
    wall_s: float
    completion_tokens: int
    tokens_per_s: float
    ttft_p50: float | None
    ttft_p95: float | None
    peak_rss_mib: float | None
    short_streams: int  # streams that ended before max_tokens
    errors: int
    notes: list[str] = field(default_factory=list)
    load1: float | None = None  # 1-minute load average when the level started (2 cores here)
    # CPU seconds the system's process spent per 1000 completion tokens: far less sensitive to
    # other tenants of a shared machine than wall-clock tokens/s (but counts OpenMP spin-waits).
    cpu_s_per_1k: float | None = None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summarise(system: str, n: int, wall: float, streams: list[StreamResult], rss_kib: int | None,
              max_tokens: int) -> LevelResult:
    tokens = sum(s.completion_tokens for s in streams)
    ttfts = [s.ttft for s in streams if s.ttft is not None]
    short = [s for s in streams if s.error is None and s.completion_tokens < max_tokens]
    errors = [s for s in streams if s.error is not None]
    notes = [f"{len(short)} stream(s) stopped early: {sorted(s.completion_tokens for s in short)}"] if short else []
    notes += [f"error: {e.error}" for e in errors[:3]]
    return LevelResult(system, n, wall, tokens, tokens / wall if wall > 0 else 0.0,
                       percentile(ttfts, 0.5), percentile(ttfts, 0.95),
                       rss_kib / 1024 if rss_kib else None, len(short), len(errors), notes)


# -- HTTP client (ours, a, b) ---------------------------------------------------------
async def one_stream(client, url: str, i: int, max_tokens: int, model: str | None, t0: float,
                     extra: dict | None = None) -> StreamResult:
    body = {"messages": prompt_messages(i), "stream": True, "max_tokens": max_tokens, "temperature": 0.0,
            "stream_options": {"include_usage": True}, **(extra or {})}
    if model:
        body["model"] = model
    ttft = None
    chunks = 0
    usage_tokens = None
    finish = None
    try:
        async with client.stream("POST", url, json=body) as resp:
            if resp.status_code != 200:
                text = (await resp.aread()).decode(errors="replace")[:200]
                return StreamResult(None, 0, None, f"HTTP {resp.status_code}: {text}")
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                event = json.loads(data)
                if "error" in event and not event.get("choices"):
                    return StreamResult(ttft, usage_tokens or chunks, finish, str(event["error"])[:200])
                for choice in event.get("choices") or []:
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        chunks += 1
                        if ttft is None:
                            ttft = time.perf_counter() - t0
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
                if event.get("usage"):
                    usage_tokens = event["usage"].get("completion_tokens")
    except Exception as exc:  # a broken stream is a result, not a crash of the benchmark
        return StreamResult(ttft, usage_tokens or chunks, finish, f"{type(exc).__name__}: {exc}")
    return StreamResult(ttft, usage_tokens if usage_tokens is not None else chunks, finish)


async def http_level(server: Server, n: int, max_tokens: int, model: str | None) -> tuple[float, list[StreamResult]]:
    import httpx

    url = server.base_url + "/v1/chat/completions"
    limits = httpx.Limits(max_connections=n + 4, max_keepalive_connections=n + 4)
    async with httpx.AsyncClient(timeout=httpx.Timeout(900, connect=30), limits=limits) as client:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one_stream(client, url, i, max_tokens, model, t0) for i in range(n)))
        return time.perf_counter() - t0, list(results)


# -- (c) static batch, in a subprocess --------------------------------------------------
def static_worker(model_path: str) -> None:
    """Runs in its own process: reads "batch_size max_tokens" per stdin line, prints one JSON line per batch."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.generation.streamers import BaseStreamer

    torch.set_grad_enabled(False)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    eos_cfg = model.generation_config.eos_token_id
    eos = {eos_cfg} if isinstance(eos_cfg, int) else set(eos_cfg or [])
    eos.add(tokenizer.eos_token_id)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    class FirstToken(BaseStreamer):
        """generate() calls put() with the prompt first, then with each new token column."""

        def __init__(self, t0: float):
            self.t0, self.calls, self.first = t0, 0, None

        def put(self, value):
            self.calls += 1
            if self.calls == 2:
                self.first = time.perf_counter() - self.t0

        def end(self):
            pass

    def batch(n: int):
        texts = [tokenizer.apply_chat_template(prompt_messages(i), add_generation_prompt=True, tokenize=False)
                 for i in range(n)]
        return tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)

    model.generate(**batch(2), max_new_tokens=4, do_sample=False, pad_token_id=pad)  # warm-up
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        n, max_tokens = (int(x) for x in line.split())
        enc = batch(n)
        t0 = time.perf_counter()
        streamer = FirstToken(t0)
        out = model.generate(**enc, max_new_tokens=max_tokens, do_sample=False, pad_token_id=pad, streamer=streamer)
        wall = time.perf_counter() - t0
        counts = []
        for row in out[:, enc["input_ids"].shape[1]:].tolist():
            # tokens up to and including the first EOS, as a server would count them
            counts.append(next((j + 1 for j, t in enumerate(row) if t in eos), len(row)))
        print(json.dumps({"n": n, "wall": wall, "ttft": streamer.first, "counts": counts}), flush=True)


class StaticBatch:
    """Baseline (c): the static-batch worker process, driven one batch at a time."""

    name = "c"

    def __init__(self, model_path: Path, log_dir: Path):
        argv = [sys.executable, str(Path(__file__).resolve()), "--static-worker", "--model-path", str(model_path)]
        self.log_path = log_dir / "c.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     start_new_session=True, env=child_env(), text=True, cwd=str(SERVICE_DIR))
        self.pid = self.proc.pid

    def _read(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"static worker exited; see {self.log_path}")
            if line.startswith("{"):
                return json.loads(line)

    async def wait_ready(self, timeout: float) -> float:
        t = time.perf_counter()
        await asyncio.wait_for(asyncio.to_thread(self._read), timeout)
        return time.perf_counter() - t

    async def level(self, n: int, max_tokens: int) -> tuple[float, list[StreamResult]]:
        self.proc.stdin.write(f"{n} {max_tokens}\n")
        self.proc.stdin.flush()
        r = await asyncio.to_thread(self._read)
        return r["wall"], [StreamResult(r["ttft"], k, None) for k in r["counts"]]

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._log.close()


# -- orchestration ------------------------------------------------------------------------
def child_env(**extra: str) -> dict:
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def start_ours(model_path: Path, log_dir: Path, max_batch: int, extra_env: list[str]) -> Server:
    port = free_port()
    env = child_env(MODEL_SERVICE_MODEL_PATH=str(model_path), MODEL_SERVICE_PORT=str(port),
                    MODEL_SERVICE_HOST="127.0.0.1", MODEL_SERVICE_MAX_BATCH_SIZE=str(max_batch),
                    MODEL_SERVICE_LOG_LEVEL="warning")
    env.update(kv.split("=", 1) for kv in extra_env)
    return Server("ours", [sys.executable, "-m", "model_service"], env, port, "/health", log_dir)


def start_naive(model_path: Path, log_dir: Path) -> Server:
    port = free_port()
    argv = [sys.executable, str(HERE / "naive_server.py"), "--model-path", str(model_path), "--port", str(port)]
    return Server("a", argv, child_env(), port, "/health", log_dir)


def start_transformers_serve(model_path: Path, log_dir: Path, num_blocks: int, max_batch_tokens: int) -> Server:
    port = free_port()
    exe = Path(sys.executable).with_name("transformers")
    argv = [str(exe), "serve", str(model_path), "--continuous-batching", "--device", "cpu", "--dtype", "float32",
            "--cb-num-blocks", str(num_blocks), "--cb-max-batch-tokens", str(max_batch_tokens),
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    return Server("b", argv, child_env(), port, "/health", log_dir)


LLAMA_SERVER = SERVICE_DIR.parent / ".tools" / "llama-server" / "bin" / "llama-server"


def start_llama_server(log_dir: Path, slots: int, context: int) -> Server:
    """llama.cpp's server on the same weights (the GGUF that `make model` converts), built by
    `make llama-server`; one slot per stream, 2 threads, its chat template (--jinja)."""
    if not LLAMA_SERVER.is_file():
        raise SystemExit(f"{LLAMA_SERVER} is missing: run `make llama-server` (about 12 minutes on 2 cores)")
    sys.path.insert(0, str(SERVICE_DIR / "src"))
    from model_service.prepare_model import find_gguf

    port = free_port()
    argv = [str(LLAMA_SERVER), "-m", str(find_gguf()), "-np", str(slots), "-c", str(context),
            "-t", str(os.cpu_count() or 2), "--jinja", "--host", "127.0.0.1", "--port", str(port),
            "--log-disable"]
    return Server("llama", argv, child_env(), port, "/health", log_dir)


def print_level(r: LevelResult) -> None:
    ttft = f"{r.ttft_p50:.2f}/{r.ttft_p95:.2f} s" if r.ttft_p50 is not None else "-"
    rss = f"{r.peak_rss_mib:.0f} MiB" if r.peak_rss_mib else "-"
    print(f"  {r.system:>4} N={r.concurrency:<3} {r.tokens_per_s:7.1f} tok/s  wall {r.wall_s:6.1f} s  "
          f"TTFT p50/p95 {ttft}  RSS {rss}  tokens {r.completion_tokens}  "
          f"CPU {fmt(r.cpu_s_per_1k, '.1f')} s/1k tok  load {r.load1 or 0:.1f}"
          + (f"  [{'; '.join(r.notes)}]" if r.notes else ""), flush=True)


def fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


LABELS = {"ours": "ours (model-service)", "a": "(a) naive generate", "b": "(b) transformers serve CB",
          "c": "(c) static batch", "llama": "llama.cpp llama-server"}


def table(results: list[LevelResult], levels: list[int], systems: list[str]) -> str:
    """One row per (streams, system), then the ratios of ours to each baseline."""
    by = {(r.system, r.concurrency): r for r in results}
    lines = ["| streams | system | tok/s | TTFT p50 s | TTFT p95 s | peak RSS MiB | CPU s / 1k tok | load1 | short/err |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for n in levels:
        for s in systems:
            r = by.get((s, n))
            if r is None:
                continue
            lines.append(f"| {n} | {LABELS[s]} | {r.tokens_per_s:.1f} | {fmt(r.ttft_p50, '.2f')} | "
                         f"{fmt(r.ttft_p95, '.2f')} | {fmt(r.peak_rss_mib, '.0f')} | {fmt(r.cpu_s_per_1k, '.1f')} | "
                         f"{fmt(r.load1, '.1f')} | {r.short_streams}/{r.errors} |")
    base = [s for s in ("llama", "a", "b", "c") if s in systems]
    if "ours" not in systems or not base:
        return "\n".join(lines)
    lines += ["", "| streams | " + " | ".join(f"ours/{s} tok/s" for s in base) + " | "
              + " | ".join(f"ours/{s} by CPU time" for s in base) + " |",
              "|---:|" + "---:|" * (2 * len(base))]
    for n in levels:
        ours = by.get(("ours", n))
        wall, cpu = [], []
        for s in base:
            other = by.get((s, n))
            derived = ""
            if other is None and s == "a":
                measured = [r for r in results if r.system == "a"]
                if measured:
                    other = max(measured, key=lambda r: r.tokens_per_s)  # its best serial rate: the fair one
                    derived = f" (a at N={other.concurrency})"
            wall.append(f"{ours.tokens_per_s / other.tokens_per_s:.2f}x{derived}"
                        if ours and other and other.tokens_per_s else "-")
            # tokens per CPU-second, ours over theirs = their CPU s/token over ours
            cpu.append(f"{other.cpu_s_per_1k / ours.cpu_s_per_1k:.2f}x{derived}"
                       if ours and other and ours.cpu_s_per_1k and other.cpu_s_per_1k else "-")
        lines.append(f"| {n} | " + " | ".join(wall + cpu) + " |")
    return "\n".join(lines)


def targets(results: list[LevelResult]) -> list[str]:
    by = {(r.system, r.concurrency): r for r in results}
    lines = []
    for n in sorted({r.concurrency for r in results}):
        ours, peer = by.get(("ours", n)), by.get(("llama", n))
        if ours and peer and peer.tokens_per_s:
            goal = 1.2 if n >= 16 else 1.0
            ratio = ours.tokens_per_s / peer.tokens_per_s
            lines.append(f"- {n} streams, >= {goal}x llama-server: {ratio:.2f}x -> {'MET' if ratio >= goal else 'NOT MET'}")
    for n in (16, 32):
        ours = by.get(("ours", n))
        if not ours:
            continue
        for s, goal, label in (("a", 6.0, ">= 6x naive"), ("b", 1.3, ">= 1.3x transformers serve"),
                               ("c", 0.85, ">= 85% of static batch")):
            other = by.get((s, n))
            derived = ""
            if other is None and s == "a":
                measured = [r for r in results if r.system == "a"]
                if measured:
                    other = max(measured, key=lambda r: r.tokens_per_s)
                    derived = f" (against (a)'s best serial rate, measured at N={other.concurrency})"
            if other and other.tokens_per_s:
                ratio = ours.tokens_per_s / other.tokens_per_s
                lines.append(f"- {n} streams, {label}: {ratio:.2f}x{derived} -> {'MET' if ratio >= goal else 'NOT MET'}")
    ours16 = by.get(("ours", 16))
    if ours16 and ours16.ttft_p50 is not None:
        lines.append(f"- TTFT p50 at 16 streams < 0.5 s: {ours16.ttft_p50:.2f} s -> "
                     f"{'MET' if ours16.ttft_p50 < 0.5 else 'NOT MET'}")
    rss = [r.peak_rss_mib for r in results if r.system == "ours" and r.peak_rss_mib]
    if rss:
        lines.append(f"- peak RSS < 2 GiB: {max(rss):.0f} MiB -> {'MET' if max(rss) < 2048 else 'NOT MET'}")
    return lines


async def main_async(args) -> int:
    levels = [int(x) for x in args.concurrency.split(",")]
    naive_levels = [int(x) for x in args.naive_concurrency.split(",")] if args.naive_concurrency else levels
    systems = [s.strip() for s in args.systems.split(",")]
    unknown = set(systems) - {"ours", "a", "b", "c", "llama"}
    if unknown:
        raise SystemExit(f"unknown systems: {sorted(unknown)}")
    model_path = Path(args.model_path).resolve()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    print(f"model {model_path}; levels {levels}; systems {systems}; {args.max_tokens} new tokens; logs {log_dir}",
          flush=True)
    started = time.perf_counter()
    results: list[LevelResult] = []
    running: dict = {}
    try:
        # Every system is started (and warmed up) first and stays loaded but idle while the
        # others run; each level is then measured for all systems back to back, so that the
        # systems compared at one level see the same load on this shared machine.
        for system in systems:
            if system == "ours":
                running[system] = start_ours(model_path, log_dir, max(32, max(levels)), args.ours_env)
            elif system == "a":
                running[system] = start_naive(model_path, log_dir)
            elif system == "llama":
                running[system] = start_llama_server(log_dir, max(32, max(levels)), args.llama_context)
            elif system == "b":
                running[system] = start_transformers_serve(model_path, log_dir, args.cb_num_blocks,
                                                           args.cb_max_batch_tokens)
            else:
                running[system] = StaticBatch(model_path, log_dir)
            ready_s = await running[system].wait_ready(args.ready_timeout)
            w0 = time.perf_counter()
            _, warm = await running[system].level(1, 8)  # first-request and first-batch costs are not timed
            await running[system].level(4, 8)
            print(f"[{system}] ready in {ready_s:.1f} s (pid {running[system].pid}); warm-up "
                  f"{time.perf_counter() - w0:.1f} s, {warm[0].completion_tokens} tokens", flush=True)
        for n in levels:
            runs: dict[str, list[LevelResult]] = {s: [] for s in systems}
            for rep in range(args.repeats):
                for system in systems:
                    if system == "a" and (rep > 0 or n not in naive_levels):
                        continue  # one request at a time: long, and other tenants average out over it
                    proc = running[system]
                    reset_hwm(proc.pid)
                    load = os.getloadavg()[0]
                    cpu0 = cpu_seconds(proc.pid)
                    wall, streams = await proc.level(n, args.max_tokens)
                    cpu = cpu_seconds(proc.pid) - cpu0
                    res = summarise(system, n, wall, streams, read_hwm_kib(proc.pid), args.max_tokens)
                    res.load1 = load
                    res.cpu_s_per_1k = 1000 * cpu / res.completion_tokens if res.completion_tokens else None
                    print_level(res)
                    runs[system].append(res)
            for system in systems:
                if not runs[system]:
                    continue
                # Other tenants only ever slow a run down: keep each system's fastest repeat.
                best = max(runs[system], key=lambda r: r.tokens_per_s)
                best.peak_rss_mib = max((r.peak_rss_mib or 0) for r in runs[system]) or None
                best.short_streams = max(r.short_streams for r in runs[system])
                best.errors = max(r.errors for r in runs[system])
                if len(runs[system]) > 1:
                    best.notes.append("tok/s of the repeats: " + ", ".join(f"{r.tokens_per_s:.1f}"
                                                                             for r in runs[system]))
                results.append(best)
            report(args, results, [l for l in levels if l <= n], systems, time.perf_counter() - started, final=False)
    finally:
        # No second signal may cut the clean-up short: every server must be gone afterwards.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for proc in running.values():
            try:
                proc.stop()
            except Exception as exc:
                print(f"could not stop {proc.pid}: {exc}", file=sys.stderr)
    report(args, results, levels, systems, time.perf_counter() - started, final=True)
    return 0


def report(args, results: list[LevelResult], levels: list[int], systems: list[str], elapsed: float,
           final: bool) -> None:
    """Print the table when done; write --json/--markdown after every level, so a cut-short run keeps its part."""
    tbl = table(results, levels, systems)
    tgt = targets(results)
    if final:
        print("\n" + tbl + "\n")
        print("\n".join(tgt))
        print(f"\ntotal {elapsed:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(shlex.quote(a) for a in sys.argv), "machine": machine(),
            "results": [asdict(r) for r in results], "elapsed_s": elapsed}, indent=2))
    if args.markdown:
        write_markdown(Path(args.markdown), tbl, tgt, results, elapsed, final)


def machine() -> str:
    import torch

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{os.cpu_count()} cores ({cpu}), no GPU, Python {platform.python_version()}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads")


def write_markdown(path: Path, tbl: str, tgt: list[str], results: list[LevelResult], elapsed: float,
                   final: bool = True) -> None:
    notes = [f"- {r.system} at {r.concurrency}: {'; '.join(r.notes)}" for r in results if r.notes]
    text = "\n".join([
        f"## Run of {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC", "",
        f"Machine: {machine()}.", "",
        "Command (from `model-service/`): `" + " ".join(shlex.quote(a) for a in sys.argv) + "`", "",
        tbl, "", "Targets:", *tgt, "", *(["Notes:", *notes, ""] if notes else []),
        f"Whole run: {elapsed:.0f} s." if final else f"Run cut short or still going after {elapsed:.0f} s.", ""])
    path.write_text(text)
    if final:
        print(f"wrote {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", default=str(DEFAULT_MODEL))
    parser.add_argument("--concurrency", default="1,4,16,32", help="comma-separated stream counts")
    parser.add_argument("--systems", default="ours,a,b,c", help="comma-separated subset of ours,llama,a,b,c")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs of each level per system (a: always 1); the table keeps the fastest")
    parser.add_argument("--cb-num-blocks", type=int, default=64,
                        help="(b) KV blocks of 256 tokens: 64 = 16384 tokens, more than 32 streams x 512")
    parser.add_argument("--cb-max-batch-tokens", type=int, default=4096,
                        help="(b) tokens per forward pass; ours prefills at most 4096 padded tokens at once")
    parser.add_argument("--llama-context", type=int, default=32768,
                        help="llama-server -c: KV tokens shared by its slots (enough for every stream's prompt + answer)")
    parser.add_argument("--ready-timeout", type=float, default=300)
    parser.add_argument("--naive-concurrency", default="",
                        help="levels at which to run (a) (default: all). It serves one request at a time, so its "
                             "tok/s does not depend on N; at the levels left out, ratios use its best measured "
                             "rate, marked as such")
    parser.add_argument("--ours-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the model-service, e.g. MODEL_SERVICE_MAX_PREFILL_TOKENS=512")
    parser.add_argument("--json", help="also write raw results here")
    parser.add_argument("--markdown", help="write the results section (table, targets, command) here")
    parser.add_argument("--static-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.static_worker:
        static_worker(args.model_path)
        return 0

    def interrupted(signum, _frame):  # SIGTERM/SIGHUP (e.g. `timeout`): unwind so every server is killed
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
