"""Load client: N concurrent OpenAI-compatible streams against one base URL.

Each stream asks for `events` content events from synthetic_upstream.py (through a relay
or directly). Every event's content is `"<seq>:<monotonic_ns sent> "`, so for each event
the client records the latency from the upstream's write to its own read, and per stream
it counts lost, duplicated and reordered events, the usage chunk and `[DONE]`.

Plain asyncio sockets with an incremental HTTP/1.1 chunked decoder: an HTTP client
library would spend more CPU per event than the relay under test on a shared 2-core box,
and would hide when bytes really arrived. One read's events share its arrival time.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

EVENT_CONTENT = re.compile(rb'"content":\s*"(\d+):(\d+) ')


@dataclass
class StreamResult:
    status: int = 0
    error: str | None = None
    ttft_ns: int | None = None  # request start to first content event
    latencies_ns: list[int] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    usage_seen: bool = False
    done_seen: bool = False
    last_event_ns: int = 0

    def lost(self, expected: int) -> int:
        return expected - len(set(self.seqs) & set(range(expected)))

    def reordered(self) -> int:
        out_of_order, highest = 0, -1
        for seq in self.seqs:
            if seq <= highest:
                out_of_order += 1
            highest = max(highest, seq)
        return out_of_order


class ChunkedDecoder:
    """Incremental Transfer-Encoding: chunked decoder. Hands over a chunk's bytes as they
    arrive (an event must not wait for the end of its chunk); `finished` after the last."""

    SIZE, DATA, CRLF, DONE = range(4)

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.state = self.SIZE
        self.remaining = 0

    @property
    def finished(self) -> bool:
        return self.state == self.DONE

    def feed(self, data: bytes) -> bytes:
        self.buffer += data
        out = bytearray()
        while True:
            if self.state == self.SIZE:
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    break
                size = int(bytes(self.buffer[:end]).split(b";")[0], 16)
                del self.buffer[: end + 2]
                self.state, self.remaining = (self.DATA, size) if size else (self.DONE, 0)
            elif self.state == self.DATA:
                take = min(len(self.buffer), self.remaining)
                out += self.buffer[:take]
                del self.buffer[:take]
                self.remaining -= take
                if self.remaining:
                    break
                self.state = self.CRLF
            elif self.state == self.CRLF and len(self.buffer) >= 2:
                del self.buffer[:2]
                self.state = self.SIZE
            else:
                break
        return bytes(out)


def request_bytes(base_url: str, events: int, api_key: str | None, model: str) -> tuple[str, int, bytes]:
    url = urlsplit(base_url)
    body = json.dumps({
        "model": model,
        "messages": [{"role": "user", "content": "bench"}],
        "stream": True,
        "max_tokens": events,
        "stream_options": {"include_usage": True},
    }).encode()
    path = url.path.rstrip("/") + "/v1/chat/completions"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\n"
        "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n"
    )
    if api_key:
        head += f"Authorization: Bearer {api_key}\r\n"
    return url.hostname, url.port, head.encode() + b"\r\n" + body


async def one_stream(host: str, port: int, request: bytes, start_delay: float, timeout: float) -> StreamResult:
    await asyncio.sleep(start_delay)
    result = StreamResult()
    started = time.monotonic_ns()
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            result.status = int(lines[0].split(" ", 2)[1])
            headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
            if result.status != 200:
                result.error = f"HTTP {result.status}: {(await reader.read(500)).decode(errors='replace')}"
                return result
            chunked = headers.get("transfer-encoding", "").lower() == "chunked"
            decoder = ChunkedDecoder() if chunked else None
            pending = b""
            while not result.done_seen:
                data = await reader.read(65536)
                arrived = time.monotonic_ns()
                if not data:
                    break
                payload = decoder.feed(data) if decoder else data
                pending = (pending + payload).replace(b"\r\n", b"\n")
                *events, pending = pending.split(b"\n\n")
                for event in events:
                    read_event(event, arrived, started, result)
                if decoder and decoder.finished:
                    break
            if not result.done_seen and result.error is None:
                result.error = "stream ended without [DONE]"
    except TimeoutError:
        result.error = "timeout"
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        if writer is not None:
            writer.close()
    return result


def read_event(event: bytes, arrived: int, started: int, result: StreamResult) -> None:
    for line in event.split(b"\n"):
        if not line.startswith(b"data:"):
            continue  # comments (": ping"), event:, id:
        data = line[5:].strip()
        if data == b"[DONE]":
            result.done_seen = True
            continue
        match = EVENT_CONTENT.search(data)
        if match:
            seq, sent = int(match.group(1)), int(match.group(2))
            result.seqs.append(seq)
            result.latencies_ns.append(arrived - sent)
            result.last_event_ns = arrived
            if result.ttft_ns is None:
                result.ttft_ns = arrived - started
        elif b'"usage"' in data and b'"completion_tokens"' in data:
            result.usage_seen = True
        elif b'"error"' in data:
            result.error = data.decode(errors="replace")[:300]


async def run_streams(base_url: str | list[str], streams: int, events: int, api_key: str | None = None,
                      model: str = "synthetic", ramp_s: float = 0.5, timeout_s: float = 120.0) -> dict:
    """Starts `streams` streams spread evenly over `ramp_s` and waits for all of them. Several base
    URLs (instances behind a round-robin balancer) take the streams in turn."""
    targets = [request_bytes(url, events, api_key, model)
               for url in ([base_url] if isinstance(base_url, str) else base_url)]
    started = time.monotonic_ns()
    results = await asyncio.gather(*(
        one_stream(*targets[i % len(targets)], ramp_s * i / streams, timeout_s) for i in range(streams)
    ))
    return summarize(results, events, started)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summarize(results: list[StreamResult], events: int, started_ns: int) -> dict:
    latencies = [v / 1e6 for r in results for v in r.latencies_ns]
    ttfts = [r.ttft_ns / 1e6 for r in results if r.ttft_ns is not None]
    received = sum(len(r.seqs) for r in results)
    ended = max((r.last_event_ns for r in results), default=started_ns)
    wall_s = max(ended - started_ns, 1) / 1e9
    errors = [r.error for r in results if r.error]
    return {
        "streams": len(results),
        "events_expected": events * len(results),
        "events_received": received,
        "events_per_s": received / wall_s,
        "wall_s": wall_s,
        "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p99": percentile(latencies, 99),
        "latency_ms_max": max(latencies, default=None),
        "ttft_ms_p50": percentile(ttfts, 50),
        "ttft_ms_p99": percentile(ttfts, 99),
        "lost": sum(r.lost(events) for r in results),
        "reordered": sum(r.reordered() for r in results),
        "duplicated": sum(len(r.seqs) - len(set(r.seqs)) for r in results),
        "streams_ok": sum(1 for r in results if r.done_seen and not r.error and r.lost(events) == 0),
        "usage_chunks": sum(1 for r in results if r.usage_seen),
        "errors": sorted(set(errors))[:5],
        "error_count": len(errors),
    }
