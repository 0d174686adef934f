"""The engine interface the serving layer talks to, so tests can swap the engine."""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass, field
from typing import AsyncIterator

from .constraints import Constraint
from .sampling import SamplingParams, TokenLogprob


class EngineError(Exception):
    """Generation failed inside the engine."""


class QueueFullError(Exception):
    """Too many requests are waiting: the caller should answer 503 with Retry-After."""

    def __init__(self, waiting: int, retry_after_s: int) -> None:
        super().__init__(f"{waiting} requests are already waiting")
        self.waiting = waiting
        self.retry_after_s = retry_after_s


@dataclass
class GenerationRequest:
    request_id: str
    prompt_ids: list[int]
    params: SamplingParams
    # Which tokens this request may generate (e.g. a JSON schema's grammar); its own state, never shared.
    constraint: Constraint | None = None
    # Requests share prefix-cache entries only with requests of the same salt (the gateway sends
    # one per API key when it isolates keys); None is a salt of its own.
    cache_salt: str | None = None


@dataclass
class GenerationOutput:
    """One increment of a request's output. The last one has `finish_reason` set."""

    text: str = ""
    completion_tokens: int = 0
    finish_reason: str | None = None  # "stop" | "length" | "cancelled" | "error"
    error: str | None = None
    # An error this request caused alone (the engine and the other requests went on): retrying it
    # elsewhere would fail the same way, so it is not the server's fault.
    caused_by_request: bool = False
    # The logprobs of the tokens generated since the previous output (when the request asked):
    # tokens whose text is held back (a split character, a possible stop string) travel with the next text.
    logprobs: list[TokenLogprob] = field(default_factory=list)
    # On the last output of an engine that measures them: where the request's time went (for its trace).
    timings: "RequestTimings | None" = None


@dataclass
class RequestStream:
    """What `Engine.submit` returns: the request's outputs as they are produced."""

    request_id: str
    prompt_tokens: int
    _queue: asyncio.Queue = field(default_factory=asyncio.Queue, repr=False)
    _cancel: "callable" = field(default=lambda: None, repr=False)
    finished: bool = False

    def cancel(self) -> None:
        if not self.finished:
            self._cancel()

    async def __aiter__(self) -> AsyncIterator[GenerationOutput]:
        while True:
            out: GenerationOutput = await self._queue.get()
            if out.finish_reason is not None:
                self.finished = True
            yield out
            if self.finished:
                return


@dataclass
class EngineLimits:
    max_batch_size: int = 32
    max_queue: int = 256
    max_model_len: int = 8192
    # new prompt tokens (padded) prefilled in one forward pass; a longer prompt is prefilled in chunks
    max_prefill_tokens: int = 4096
    max_kv_tokens: int = 65536  # rows x window columns the batch may hold


class EngineListener:
    """Hooks for metrics; the default does nothing."""

    def on_step(self, running: int, waiting: int) -> None: ...
    def on_first_token(self, request_id: str, seconds: float) -> None: ...
    def on_token_gap(self, seconds: float) -> None: ...
    def on_cancelled(self, request_id: str) -> None: ...
    def on_prefix_cache(self, queried_tokens: int, hit_tokens: int) -> None: ...
    def on_prefill(self, tokens: int) -> None: ...
    def on_finished(self, request_id: str, timings: "RequestTimings") -> None: ...


@dataclass(frozen=True)
class RequestTimings:
    """Where a finished request's time went (seconds): waiting for a batch slot, prefill up to its first token,
    decoding after it, and all of it from arrival; prefill and decode are 0 for a request that never got there."""
    queue: float
    prefill: float
    decode: float
    e2e: float
    finish_reason: str


@dataclass
class EngineStats:
    waiting: int
    running: int
    loop_alive: bool


class Engine(abc.ABC):
    @abc.abstractmethod
    def submit(self, request: GenerationRequest) -> RequestStream:
        """Queue a request; raises QueueFullError when the waiting queue is full."""

    @abc.abstractmethod
    def stats(self) -> EngineStats: ...

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def shutdown(self) -> None: ...
