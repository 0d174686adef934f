"""Session benchmarks: model-service beside llama.cpp's llama-server, in one run, same prompts.

Two scenarios a chat deployment lives with and a single-shot benchmark (bench_serving.py) does
not show:

  multiturn  C conversations at once, T turns each; every turn resends the whole history (as the
             chat page and every OpenAI client do), so turn t's prompt holds turn t-1's prompt and
             answer. Reports TTFT p50/p95 per turn index, the slowest turn, total tokens/s.
             A prefix cache (ours; llama-server's slots) keeps later turns from growing slower.
  burst      R long streams decode; once each has produced a few tokens, B new requests arrive at
             once. Reports the inter-token gaps of the R running streams inside the burst window
             (burst sent -> last burst stream's first token) against their gaps before it, and the
             burst's TTFT. Chunked prefill is what keeps the running streams' pace.

    python bench/bench_sessions.py --systems ours,llama

Greedy, `max_tokens` per turn; servers are started and stopped by this script (bench_serving's
launchers). The load average is printed beside every figure: run it alone on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_serving import DEFAULT_MODEL, machine, percentile, start_llama_server, start_ours

QUESTIONS = [
    "Tell me about the history of {t}.", "What are the three most important facts about it?",
    "Explain the second fact in more detail.", "How would you explain this to a child?",
    "What do people often get wrong about it?", "Summarise our conversation in two sentences.",
]
TOPICS = ["lighthouses", "bread baking", "the Roman roads", "honey bees", "glaciers", "steam trains",
          "the printing press", "coral reefs", "windmills", "paper money", "the compass", "volcanoes"]


@dataclass
class Stream:
    ttft: float | None = None
    token_times: list[float] = field(default_factory=list)  # arrival of each content chunk
    text: str = ""
    tokens: int = 0
    error: str | None = None


async def chat_stream(client, url: str, messages: list[dict], max_tokens: int, out: Stream | None = None) -> Stream:
    """One greedy streamed chat completion; `out` fills as chunks arrive (a caller may watch it)."""
    body = {"messages": messages, "stream": True, "max_tokens": max_tokens, "temperature": 0.0,
            "stream_options": {"include_usage": True}}
    out, t0 = out or Stream(), time.perf_counter()
    try:
        async with client.stream("POST", url, json=body) as resp:
            if resp.status_code != 200:
                out.error = f"HTTP {resp.status_code}: {(await resp.aread())[:200]!r}"
                return out
            async for line in resp.aiter_lines():
                if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                    continue
                event = json.loads(line[5:])
                for choice in event.get("choices") or []:
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        now = time.perf_counter()
                        out.ttft = out.ttft if out.ttft is not None else now - t0
                        out.token_times.append(now)
                        out.text += content
                if event.get("usage"):
                    out.tokens = event["usage"].get("completion_tokens") or 0
    except Exception as exc:  # a broken stream is a result
        out.error = f"{type(exc).__name__}: {exc}"
    out.tokens = out.tokens or len(out.token_times)
    return out


def client_for(n: int):
    import httpx

    limits = httpx.Limits(max_connections=n + 4, max_keepalive_connections=n + 4)
    return httpx.AsyncClient(timeout=httpx.Timeout(900, connect=30), limits=limits)


# -- multi-turn -------------------------------------------------------------------------
async def multiturn(base_url: str, conversations: int, turns: int, max_tokens: int) -> dict:
    url = base_url + "/v1/chat/completions"
    per_turn: list[list[Stream]] = [[] for _ in range(turns)]

    async def conversation(c: int):
        history: list[dict] = []
        for t in range(turns):
            history.append({"role": "user", "content": QUESTIONS[t % len(QUESTIONS)].format(t=TOPICS[c % len(TOPICS)])})
            s = await chat_stream(client, url, history, max_tokens)
            per_turn[t].append(s)
            history.append({"role": "assistant", "content": s.text})

    async with client_for(conversations) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(conversation(c) for c in range(conversations)))
        wall = time.perf_counter() - t0
    streams = [s for turn in per_turn for s in turn]
    turn_walls = [(s.token_times[-1] - s.token_times[0] + s.ttft) for s in streams if s.token_times]
    return {
        "wall_s": wall, "tokens": sum(s.tokens for s in streams),
        "tok_s": sum(s.tokens for s in streams) / wall,
        "ttft_p50_by_turn": [percentile([s.ttft for s in turn if s.ttft is not None], 0.5) for turn in per_turn],
        "ttft_p95_by_turn": [percentile([s.ttft for s in turn if s.ttft is not None], 0.95) for turn in per_turn],
        "slowest_ttft": max(s.ttft for s in streams if s.ttft is not None),
        "slowest_turn_s": max(turn_walls),
        "errors": [s.error for s in streams if s.error][:3],
        "short_answers": sum(1 for s in streams if s.tokens < max_tokens),
    }


# -- burst ------------------------------------------------------------------------------
async def burst(base_url: str, running: int, arrivals: int, max_tokens: int, warm_tokens: int = 8) -> dict:
    url = base_url + "/v1/chat/completions"

    def story(i: int) -> list[dict]:
        return [{"role": "user", "content": f"Write a long, detailed story about {TOPICS[i % len(TOPICS)]}. "
                                            "Describe every scene at length."}]

    def question(i: int) -> list[dict]:  # distinct prompts of ~100 tokens: no prefix is shared
        return [{"role": "user", "content": f"Request {i}: " + " ".join(
            f"{TOPICS[(i + k) % len(TOPICS)]} and {TOPICS[(i * 7 + k) % len(TOPICS)]}," for k in range(12))
            + " which of these is the oldest?"}]

    async with client_for(running + arrivals) as client:
        live = [Stream() for _ in range(running)]
        long_tasks = [asyncio.ensure_future(chat_stream(client, url, story(i), max_tokens, live[i]))
                      for i in range(running)]
        deadline = time.perf_counter() + 300
        while any(len(s.token_times) < warm_tokens for s in live) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        sent = time.perf_counter()
        new = await asyncio.gather(*(chat_stream(client, url, question(i), 16) for i in range(arrivals)))
        window_end = max(sent + s.ttft for s in new if s.ttft is not None)
        for t in long_tasks:
            t.cancel()
        await asyncio.gather(*long_tasks, return_exceptions=True)

    def gaps(lo: float, hi: float) -> list[float]:
        return [b - a for s in live for a, b in zip(s.token_times, s.token_times[1:]) if lo <= b <= hi]

    before = gaps(0, sent)
    during = gaps(sent, window_end)
    return {
        "window_s": window_end - sent,
        "itl_before_p50": percentile(before, 0.5), "itl_before_p99": percentile(before, 0.99),
        "itl_during_p50": percentile(during, 0.5), "itl_during_p99": percentile(during, 0.99),
        "itl_during_max": max(during) if during else None, "gaps_during": len(during),
        "burst_ttft_p50": percentile([s.ttft for s in new if s.ttft is not None], 0.5),
        "burst_ttft_p95": percentile([s.ttft for s in new if s.ttft is not None], 0.95),
        "errors": [s.error for s in new if s.error][:3],
    }


# -- driver ---------------------------------------------------------------------------
def fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


async def main_async(args) -> int:
    systems = [s.strip() for s in args.systems.split(",")]
    if set(systems) - {"ours", "llama"}:
        raise SystemExit("systems: ours, llama")
    log_dir = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    results: dict[str, dict] = {}
    slots = max(32, args.conversations, args.running + args.arrivals)
    print(f"{machine()}; logs {log_dir}", flush=True)
    for system in systems:  # one at a time: each has the machine to itself
        server = (start_ours(Path(args.model_path).resolve(), log_dir, slots, args.ours_env) if system == "ours"
                  else start_llama_server(log_dir, slots, args.llama_context))
        try:
            await server.wait_ready(300)
            await multiturn(server.base_url, 2, 1, 8)  # warm-up, not timed
            out: dict = {}
            if "multiturn" in args.scenarios:
                load = os.getloadavg()[0]
                out["multiturn"] = await multiturn(server.base_url, args.conversations, args.turns, args.max_tokens)
                out["multiturn"]["load1"] = load
                print(f"[{system}] multiturn {json.dumps(out['multiturn'], default=str)}", flush=True)
            if "burst" in args.scenarios:
                load = os.getloadavg()[0]
                out["burst"] = await burst(server.base_url, args.running, args.arrivals, 512)
                out["burst"]["load1"] = load
                print(f"[{system}] burst {json.dumps(out['burst'], default=str)}", flush=True)
            results[system] = out
        finally:
            server.stop()
    print(report(args, results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


def report(args, results: dict) -> str:
    lines = []
    if "multiturn" in args.scenarios:
        lines += [f"### Multi-turn: {args.conversations} conversations x {args.turns} turns, "
                  f"{args.max_tokens} tokens per answer", "",
                  "| system | load | tok/s | " + " | ".join(f"TTFT p50 t{t + 1}" for t in range(args.turns))
                  + " | slowest TTFT | slowest turn s |", "|---" * (args.turns + 5) + "|"]
        for system, r in results.items():
            m = r["multiturn"]
            lines.append(f"| {system} | {m['load1']:.2f} | {m['tok_s']:.1f} | "
                         + " | ".join(fmt(v) for v in m["ttft_p50_by_turn"])
                         + f" | {fmt(m['slowest_ttft'])} | {fmt(m['slowest_turn_s'])} |")
        lines.append("")
    if "burst" in args.scenarios:
        lines += [f"### Burst: {args.arrivals} arrivals while {args.running} streams decode", "",
                  "| system | load | ITL p50 / p99 before (ms) | ITL p50 / p99 / max during (ms) | "
                  "window s | burst TTFT p50 / p95 s |", "|---|---|---|---|---|---|"]
        for system, r in results.items():
            b = r["burst"]
            ms = lambda v: fmt(None if v is None else v * 1000, ".0f")  # noqa: E731
            lines.append(f"| {system} | {b['load1']:.2f} | {ms(b['itl_before_p50'])} / {ms(b['itl_before_p99'])} | "
                         f"{ms(b['itl_during_p50'])} / {ms(b['itl_during_p99'])} / {ms(b['itl_during_max'])} | "
                         f"{fmt(b['window_s'])} | {fmt(b['burst_ttft_p50'])} / {fmt(b['burst_ttft_p95'])} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-path", default=str(DEFAULT_MODEL))
    p.add_argument("--systems", default="ours,llama")
    p.add_argument("--scenarios", default="multiturn,burst")
    p.add_argument("--conversations", type=int, default=8)
    p.add_argument("--turns", type=int, default=6)
    p.add_argument("--max-tokens", type=int, default=48, help="per answer (the burst's running streams ask for 512)")
    p.add_argument("--running", type=int, default=4)
    p.add_argument("--arrivals", type=int, default=16)
    p.add_argument("--llama-context", type=int, default=65536)
    p.add_argument("--ours-env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
