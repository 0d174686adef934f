"""What the browser path costs next to /v1, measured in one run on one gateway.

Starts the scripted upstream (instant replies of N chunks) and the real gateway jar, then for
the same replies measures, one reply at a time and then C at once:
  /v1   : POST /v1/chat/completions (stream) with the API key, read to [DONE]
  /api  : POST /api/chat/messages, then GET the reply's event stream to its finish event
Prints time to the first token and to the end (medians, p95) and the /api : /v1 ratios.
The browser path does more per reply (two requests, two database writes, an event log kept
for resuming), so a ratio a little above 1 is expected; the question is how much.

    .venv/bin/python tests/browser/bench_browser_api.py [--replies 40] [--chunks 200] [--concurrency 8]

Measured 2026-11-25 on the shared 2-core machine (load average 3-5 from other work), 80 replies
of 200 chunks, after events became ready-made bytes shared by all readers: one at a time
/api : /v1 = 1.27x TTFT p50 (9.9 vs 7.8 ms: two requests and the database writes), 1.10x whole
reply (14.0 vs 12.7 ms); 8 at a time 1.38x TTFT p50 (50 vs 37 ms), 0.85x whole reply (72 vs
85 ms). With SseEmitter's per-field writes it had been 1.30x and 1.83x whole reply.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripted_upstream import ScriptedUpstream  # noqa: E402
from stack import free_port, start_gateway  # noqa: E402


def v1_reply(client: httpx.Client, key: str) -> tuple[float, float, int]:
    start = time.perf_counter()
    first = None
    chunks = 0
    body = {"messages": [{"role": "user", "content": "bench"}], "stream": True, "max_tokens": 512}
    with client.stream("POST", "/v1/chat/completions", json=body,
                       headers={"Authorization": f"Bearer {key}"}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                chunks += 1
                first = first or time.perf_counter()
    end = time.perf_counter()
    return first - start, end - start, chunks


def api_reply(client: httpx.Client) -> tuple[float, float, int]:
    start = time.perf_counter()
    sent = client.post("/api/chat/messages", json={"content": "bench"})
    sent.raise_for_status()
    first = None
    tokens = 0
    event = None
    with client.stream("GET", f"/api/chat/messages/{sent.json()['messageId']}/stream") as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "token":
                tokens += 1
                first = first or time.perf_counter()
            elif line.startswith("data:") and event in ("finish", "error"):
                break
    end = time.perf_counter()
    return first - start, end - start, tokens


def summarize(name: str, samples: list[tuple[float, float, int]]) -> dict:
    ttft = sorted(s[0] * 1000 for s in samples)
    total = sorted(s[1] * 1000 for s in samples)
    p95 = lambda values: values[min(len(values) - 1, int(len(values) * 0.95))]  # noqa: E731
    result = {"ttft_p50": statistics.median(ttft), "ttft_p95": p95(ttft),
              "total_p50": statistics.median(total), "total_p95": p95(total)}
    print(f"  {name:5} TTFT p50 {result['ttft_p50']:7.1f} ms  p95 {result['ttft_p95']:7.1f} ms   "
          f"whole reply p50 {result['total_p50']:7.1f} ms  p95 {result['total_p95']:7.1f} ms")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=40)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    with ScriptedUpstream() as upstream:
        upstream.script([f" t{i}" for i in range(args.chunks)])
        limits = {"GATEWAY_DEFAULT_REQUESTS_PER_MINUTE": "100000", "GATEWAY_DEFAULT_TOKENS_PER_MINUTE": "100000000",
                  "GATEWAY_DEFAULT_MAX_CONCURRENT_STREAMS": "1000"}
        with start_gateway(free_port(), [upstream.url], limits) as gateway:
            base = httpx.Client(base_url=gateway.url, timeout=60)
            base.post("/api/session", json={"apiKey": gateway.api_key}).raise_for_status()
            for _ in range(10):  # warm both paths up (JIT) before measuring
                v1_reply(base, gateway.api_key)
                api_reply(base)

            print(f"{args.replies} replies of {args.chunks} chunks, one at a time:")
            v1 = summarize("/v1", [v1_reply(base, gateway.api_key) for _ in range(args.replies)])
            api = summarize("/api", [api_reply(base) for _ in range(args.replies)])
            print(f"  ratio /api : /v1   TTFT {api['ttft_p50'] / v1['ttft_p50']:.2f}x   "
                  f"whole reply {api['total_p50'] / v1['total_p50']:.2f}x")

            print(f"{args.replies} replies, {args.concurrency} at a time:")
            with ThreadPoolExecutor(args.concurrency) as pool:
                v1c = summarize("/v1", list(pool.map(lambda _: v1_reply(base, gateway.api_key),
                                                     range(args.replies))))
                apic = summarize("/api", list(pool.map(lambda _: api_reply(base), range(args.replies))))
            print(f"  ratio /api : /v1   TTFT {apic['ttft_p50'] / v1c['ttft_p50']:.2f}x   "
                  f"whole reply {apic['total_p50'] / v1c['total_p50']:.2f}x")


if __name__ == "__main__":
    main()
