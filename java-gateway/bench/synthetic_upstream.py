"""A fast synthetic OpenAI-compatible streaming upstream for gateway benchmarks.

`POST /v1/chat/completions` with `"stream": true` answers `max_tokens` content events
(default 100) at a fixed rate per stream (default 50 events/s), on an absolute schedule so
a late wake-up never slows the stream down. Each event's `delta.content` is
`"<seq>:<monotonic_ns> "`: the sequence number and the moment it was written, so the client
can compute the latency each hop adds and detect lost or reordered events (the content
survives any OpenAI-compatible relay; extra JSON fields may not). With
`stream_options.include_usage` a usage chunk follows, then `data: [DONE]`.
Also `GET /health` (the gateway probes it), `GET /v1/models`, and non-stream completions.

Plain asyncio (uvloop when installed) with a minimal HTTP/1.1 parser and writer: a web
framework would spend more CPU per event than the gateway under test, on a shared machine.

    python synthetic_upstream.py --port 0 --events-per-second 50   # prints "PORT <n>"

`--capacity N` makes it a model with N batch slots: a stream beyond them waits (after its
response headers, as a model server queues) for a free slot, then `--first-token-ms` (prefill)
before its first event; the overload benchmark (degrade_overload.py) uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

MODEL = "synthetic"


class BadRequest(Exception):
    pass


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, _ = lines[0].split(" ", 2)
    except ValueError:
        raise BadRequest("bad request line")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        return method, target, headers, bytes(body)
    length = int(headers.get("content-length", "0"))
    return method, target, headers, await reader.readexactly(length) if length else b""


def response_head(status: str, content_type: str, length: int | None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{framing}\r\n"
        "Cache-Control: no-cache\r\nConnection: keep-alive\r\n\r\n"
    ).encode()


def json_response(status: str, payload: dict) -> bytes:
    body = json.dumps(payload).encode()
    return response_head(status, "application/json", len(body)) + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Upstream:
    def __init__(self, events_per_second: float, capacity: int = 0, first_token_ms: float = 0.0):
        self.interval_ns = int(1e9 / events_per_second)
        self.streams = 0
        self.slots = asyncio.Semaphore(capacity) if capacity > 0 else None
        self.first_token_s = first_token_ms / 1000

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    request = await read_request(reader)
                except BadRequest:
                    writer.write(json_response("400 Bad Request", error("bad request")))
                    break
                if request is None:
                    break
                method, target, _, body = request
                path = target.split("?", 1)[0]
                if method == "GET" and path == "/health":
                    writer.write(json_response("200 OK", {"status": "ready", "model": MODEL}))
                elif method == "GET" and path == "/v1/models":
                    writer.write(json_response("200 OK", {"object": "list", "data": [
                        {"id": MODEL, "object": "model", "created": 0, "owned_by": "bench"}]}))
                elif method == "POST" and path == "/v1/chat/completions":
                    await self.completions(body, writer)
                else:
                    writer.write(json_response("404 Not Found", error(f"no route {method} {path}")))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def completions(self, body: bytes, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(body)
            events = int(request.get("max_tokens") or request.get("max_completion_tokens") or 100)
        except (ValueError, TypeError, AttributeError):
            writer.write(json_response("400 Bad Request", error("body is not a JSON object")))
            return
        created = int(time.time())
        ident = f"chatcmpl-bench-{time.monotonic_ns()}"
        if not request.get("stream"):
            writer.write(json_response("200 OK", {
                "id": ident, "object": "chat.completion", "created": created, "model": MODEL,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}))
            return
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        # Every chunk shares this prefix; only the content changes (no json.dumps per event).
        prefix = (
            '{"id":"%s","object":"chat.completion.chunk","created":%d,"model":"%s",'
            '"choices":[{"index":0,"delta":' % (ident, created, MODEL)
        ).encode()
        writer.write(response_head("200 OK", "text/event-stream", None))
        if self.slots is not None:
            await writer.drain()
            async with self.slots:
                if self.first_token_s:
                    await asyncio.sleep(self.first_token_s)
                await self.stream(writer, prefix, ident, created, events, include_usage)
        else:
            await self.stream(writer, prefix, ident, created, events, include_usage)

    async def stream(self, writer: asyncio.StreamWriter, prefix: bytes, ident: str, created: int, events: int,
                     include_usage: bool) -> None:
        writer.write(chunk(b"data: " + prefix + b'{"role":"assistant","content":""},"finish_reason":null}]}\n\n'))
        self.streams += 1
        try:
            start = time.monotonic_ns()
            for seq in range(events):
                delay = start + seq * self.interval_ns - time.monotonic_ns()
                if delay > 0:
                    await asyncio.sleep(delay / 1e9)
                finish = b'"stop"' if seq == events - 1 else b"null"
                content = b'{"content":"%d:%d "},"finish_reason":%s}]}' % (seq, time.monotonic_ns(), finish)
                writer.write(chunk(b"data: " + prefix + content + b"\n\n"))
                if writer.transport.get_write_buffer_size() > 1 << 20:
                    await writer.drain()  # a reader that stopped reading: do not buffer forever
            if include_usage:
                usage = (
                    '{"id":"%s","object":"chat.completion.chunk","created":%d,"model":"%s","choices":[],'
                    '"usage":{"prompt_tokens":8,"completion_tokens":%d,"total_tokens":%d}}'
                    % (ident, created, MODEL, events, events + 8)
                ).encode()
                writer.write(chunk(b"data: " + usage + b"\n\n"))
            writer.write(chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        finally:
            self.streams -= 1


def error(message: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}


async def serve(host: str, port: int, events_per_second: float, capacity: int = 0,
                first_token_ms: float = 0.0) -> None:
    upstream = Upstream(events_per_second, capacity, first_token_ms)
    server = await asyncio.start_server(upstream.handle, host, port, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: pick a free port")
    parser.add_argument("--events-per-second", type=float, default=50.0)
    parser.add_argument("--capacity", type=int, default=0, help="batch slots; 0: unlimited")
    parser.add_argument("--first-token-ms", type=float, default=0.0, help="prefill time once a slot is free")
    args = parser.parse_args()
    try:
        run(serve(args.host, args.port, args.events_per_second, args.capacity, args.first_token_ms))
    except KeyboardInterrupt:
        pass


def run(coroutine):
    """uvloop when installed (less CPU per event), else the standard loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


if __name__ == "__main__":
    main()
