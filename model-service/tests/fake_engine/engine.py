"""A scripted engine behind the real serving layer: what the model would say, when, and how it fails, decided
by the test. The serving code under test (routers, protocol, SSE framing, errors, defaults, cancellation) is
the real one, with the real tokenizer; only the engine is replaced, so a test runs in milliseconds and can
inject what the real model cannot be made to do on demand (a failure at token 3, a full queue, a slow token).

The fake keeps the real engine's contract (engine/base.py): `submit` raises QueueFullError when its queue is
full, outputs arrive on the request's stream, the last one carries the finish reason, `cancel` ends a
request with "cancelled" and frees its place.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Callable

from model_service.engine.base import (Engine, EngineStats, GenerationOutput, GenerationRequest, QueueFullError,
                                       RequestStream)


@dataclass
class Script:
    """One request's answer: `pieces` one token each, then `finish_reason` (cut to "length" at max_tokens)."""

    pieces: list[str] = field(default_factory=lambda: ["Hello", ",", " world", "."])
    finish_reason: str = "stop"
    delay_s: float = 0.0  # before each piece
    # end with finish_reason "error" after `fail_after` pieces; `caused_by_request`: the request's own fault
    fail_after: int | None = None
    error: str = "scripted failure"
    caused_by_request: bool = False


class ScriptedEngine(Engine):
    """Plays `script(request)` (or one Script for every request) and records what it was asked."""

    def __init__(self, script: Script | Callable[[GenerationRequest], Script] | None = None,
                 max_queue: int = 64, retry_after_s: int = 2) -> None:
        self.script = script or Script()
        self.max_queue = max_queue
        self.retry_after_s = retry_after_s
        self.requests: list[GenerationRequest] = []  # every request submitted, in order
        self.cancelled: list[str] = []  # request ids whose stream was cancelled before it finished
        self.finished: dict[str, str] = {}  # request id -> finish reason
        self._active: dict[str, asyncio.Task] = {}
        self.alive = False

    # -- Engine -------------------------------------------------------------------------
    def submit(self, request: GenerationRequest) -> RequestStream:
        if len(self._active) >= self.max_queue:
            raise QueueFullError(len(self._active), retry_after_s=self.retry_after_s)
        script = self.script(request) if callable(self.script) else self.script
        stream = RequestStream(request_id=request.request_id, prompt_tokens=len(request.prompt_ids))
        self.requests.append(request)
        task = asyncio.get_running_loop().create_task(self._play(request, script, stream))
        self._active[request.request_id] = task
        stream._cancel = lambda: self._cancel(request.request_id, stream)
        return stream

    def stats(self) -> EngineStats:
        return EngineStats(waiting=0, running=len(self._active), loop_alive=self.alive)

    def start(self) -> None:
        self.alive = True

    def shutdown(self) -> None:
        self.alive = False
        for task in self._active.values():
            task.cancel()

    # -- playing a script ---------------------------------------------------------------
    async def _play(self, request: GenerationRequest, script: Script, stream: RequestStream) -> None:
        budget = request.params.max_tokens
        for count, piece in enumerate(script.pieces, start=1):
            if script.delay_s:
                await asyncio.sleep(script.delay_s)
            if script.fail_after is not None and count > script.fail_after:
                return self._end(request, stream, GenerationOutput(
                    finish_reason="error", error=script.error, completion_tokens=count - 1,
                    caused_by_request=script.caused_by_request))
            last = count == len(script.pieces) or count == budget
            reason = None
            if last:
                reason = "length" if count == budget and (count < len(script.pieces)
                                                          or script.finish_reason == "length") else script.finish_reason
            output = GenerationOutput(text=piece, completion_tokens=count, finish_reason=reason)
            if last:
                return self._end(request, stream, output)
            stream._queue.put_nowait(output)
        self._end(request, stream, GenerationOutput(finish_reason=script.finish_reason))

    def _end(self, request: GenerationRequest, stream: RequestStream, output: GenerationOutput) -> None:
        self._active.pop(request.request_id, None)
        self.finished[request.request_id] = output.finish_reason
        stream._queue.put_nowait(output)

    def _cancel(self, request_id: str, stream: RequestStream) -> None:
        task = self._active.pop(request_id, None)
        if task is None:
            return
        task.cancel()
        self.cancelled.append(request_id)
        self.finished[request_id] = "cancelled"
        stream._queue.put_nowait(GenerationOutput(finish_reason="cancelled"))
