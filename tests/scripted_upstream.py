"""A scripted OpenAI-compatible upstream, for injecting replies and faults.

It answers like model-service (`/health`, `/v1/models`, streamed and plain
`/v1/chat/completions`), but its reply is whatever the test scripts: exact chunks, a delay
between them, HTML meant to be shown as text. Tests that use it say "scripted" in their
names; everything else runs against the real model-service.

In a test:  with ScriptedUpstream() as upstream: upstream.script(["Hello", " world"]) ...
By hand:    python tests/scripted_upstream.py --port 7001 --delay 0.1 --reply "Hi there"
"""
from __future__ import annotations

import argparse
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL_ID = "scripted"


@dataclass
class Script:
    chunks: list[str] = field(default_factory=lambda: ["Hello", " from", " the", " scripted", " upstream."])
    delay_s: float = 0.0          # pause before each chunk
    finish_reason: str = "stop"
    status: int = 200             # non-200: answer with this status and an OpenAI error body
    retry_after: str | None = None


class ScriptedUpstream:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, model_id: str = MODEL_ID):
        self.model_id = model_id           # the id it lists in /v1/models and answers with
        self._script = Script()
        self._lock = threading.Lock()
        self.requests: list[dict] = []     # every chat completion body received
        self.disconnects = 0               # streams the client closed before the end
        self.completed = 0                 # streams written to the end
        self.chunks_written = 0            # content chunks written, all streams together
        self.healthy = True                # False: /health answers 503 (as while loading)
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                if self.path == "/health":
                    if upstream.healthy:
                        self._json(200, {"status": "ready", "model": upstream.model_id})
                    else:
                        self._json(503, {"status": "loading"})
                elif self.path == "/v1/models":
                    self._json(200, {"object": "list", "data": [
                        {"id": upstream.model_id, "object": "model", "created": 0, "owned_by": "tests"}]})
                elif self.path == "/metrics":
                    self._send(200, b"# scripted upstream\n", "text/plain")
                else:
                    self._json(404, _error("not found", "not_found_error"))

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path != "/v1/chat/completions":
                    self._json(404, _error("not found", "not_found_error"))
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._json(400, _error("malformed JSON", "invalid_request_error"))
                    return
                with upstream._lock:
                    upstream.requests.append(body)
                    script = upstream._script
                if script.status != 200:
                    headers = {"Retry-After": script.retry_after} if script.retry_after else {}
                    self._json(script.status, _error(f"scripted status {script.status}", "server_error"), headers)
                    return
                if body.get("stream"):
                    self._stream(body, script)
                else:
                    text = "".join(script.chunks)
                    self._json(200, {
                        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                        "created": int(time.time()), "model": upstream.model_id,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                     "finish_reason": script.finish_reason}],
                        "usage": _usage(body, script.chunks),
                    })

            def _stream(self, body: dict, script: Script):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                completion_id = f"chatcmpl-{uuid.uuid4().hex}"

                def chunk(delta: dict, finish=None) -> dict:
                    return {"id": completion_id, "object": "chat.completion.chunk",
                            "created": int(time.time()), "model": upstream.model_id,
                            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

                try:
                    self._event(chunk({"role": "assistant", "content": ""}))
                    for piece in script.chunks:
                        if script.delay_s:
                            time.sleep(script.delay_s)
                        self._event(chunk({"content": piece}))
                        with upstream._lock:
                            upstream.chunks_written += 1
                    self._event(chunk({}, script.finish_reason))
                    if (body.get("stream_options") or {}).get("include_usage"):
                        self._event({"id": completion_id, "object": "chat.completion.chunk",
                                     "created": int(time.time()), "model": upstream.model_id, "choices": [],
                                     "usage": _usage(body, script.chunks)})
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                    with upstream._lock:
                        upstream.completed += 1
                except (BrokenPipeError, ConnectionResetError):
                    with upstream._lock:
                        upstream.disconnects += 1
                self.close_connection = True

            def _event(self, payload: dict):
                self.wfile.write(b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n")
                self.wfile.flush()

            def _json(self, status: int, payload: dict, headers: dict | None = None):
                self._send(status, json.dumps(payload).encode(), "application/json", headers)

            def _send(self, status: int, data: bytes, content_type: str, headers: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = _Server((host, port), Handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, chunks: list[str] | str, delay_s: float = 0.0, finish_reason: str = "stop",
               status: int = 200, retry_after: str | None = None) -> None:
        """Sets the reply for the next requests: a list of chunks, or a string split into words."""
        if isinstance(chunks, str):
            chunks = re.findall(r"\s*\S+|\s+$", chunks) or [chunks]
        with self._lock:
            self._script = Script(list(chunks), delay_s, finish_reason, status, retry_after)

    def start(self) -> "ScriptedUpstream":
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "ScriptedUpstream":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections when dozens of streams open at once
    request_queue_size = 128


def _error(message: str, type_: str) -> dict:
    return {"error": {"message": message, "type": type_, "param": None, "code": None}}


def _usage(body: dict, chunks: list[str]) -> dict:
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    completion = len(chunks)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reply", default="Hello from the scripted upstream.")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds before each chunk")
    args = parser.parse_args()
    server = ScriptedUpstream(port=args.port)
    server.script(args.reply, delay_s=args.delay)
    print(f"scripted upstream on {server.url}", flush=True)
    server.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
