"""Continuous batching over a plain transformers causal LM, in one background thread.

Every loop iteration: drop cancelled requests, admit waiting ones (one batched prefill),
then run one decoding step for every running request. A request that arrives while
others decode joins at the next step; one that finishes or is cancelled leaves at once.
Generation never runs on the asyncio event loop: outputs are handed back to it with
`call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from .base import (
    Engine,
    EngineStats,
    GenerationOutput,
    GenerationRequest,
    QueueFullError,
    RequestStream,
)
from .detokenizer import IncrementalDetokenizer, StopStringMatcher
from .kv_cache import BatchKVCache
from .sampling import sample

log = logging.getLogger(__name__)


@dataclass
class EngineLimits:
    max_batch_size: int = 32
    max_queue: int = 256
    max_model_len: int = 8192
    max_prefill_tokens: int = 4096  # padded prompt tokens prefilled in one forward pass
    max_kv_tokens: int = 65536  # rows x window columns the batch may hold


class EngineListener:
    """Hooks for metrics; the default does nothing."""

    def on_step(self, running: int, waiting: int) -> None: ...
    def on_first_token(self, request_id: str, seconds: float) -> None: ...
    def on_token_gap(self, seconds: float) -> None: ...
    def on_cancelled(self, request_id: str) -> None: ...


@dataclass
class _Sequence:
    request: GenerationRequest
    stream: RequestStream
    loop: asyncio.AbstractEventLoop
    detok: IncrementalDetokenizer
    stops: StopStringMatcher
    generator: torch.Generator | None
    arrived: float = field(default_factory=time.perf_counter)
    last_token_at: float | None = None
    pending_token: int | None = None
    generated: int = 0
    cancelled: bool = False


class ContinuousBatchingEngine(Engine):
    def __init__(self, model, tokenizer, limits: EngineLimits, listener: EngineListener | None = None,
                 eos_token_ids: set[int] | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.limits = limits
        self.listener = listener or EngineListener()
        self.device = next(model.parameters()).device
        self.eos_token_ids = eos_token_ids or _eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else next(iter(self.eos_token_ids))
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._waiting: collections.deque[_Sequence] = collections.deque()
        self._running: list[_Sequence] = []  # index i is row i of the cache
        self._cache = BatchKVCache()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._alive = False

    # -- called from the event loop ---------------------------------------------------
    def submit(self, request: GenerationRequest) -> RequestStream:
        loop = asyncio.get_running_loop()
        stream = RequestStream(request_id=request.request_id, prompt_tokens=len(request.prompt_ids))
        generator = None
        if request.params.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(request.params.seed)
        seq = _Sequence(request, stream, loop, IncrementalDetokenizer(self.tokenizer),
                        StopStringMatcher(request.params.stop), generator)
        stream._cancel = lambda: self._cancel(seq)
        with self._lock:
            if len(self._waiting) >= self.limits.max_queue:
                raise QueueFullError(len(self._waiting), retry_after_s=self._retry_after())
            self._waiting.append(seq)
            self._wake.notify()
        return stream

    def stats(self) -> EngineStats:
        return EngineStats(waiting=len(self._waiting), running=len(self._running), loop_alive=self._alive)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="generation-loop", daemon=True)
        self._alive = True
        self._thread.start()

    def shutdown(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify()
        if self._thread:
            self._thread.join(timeout=10)

    def _cancel(self, seq: _Sequence) -> None:
        with self._lock:
            seq.cancelled = True
            try:
                self._waiting.remove(seq)  # a waiting request frees its queue place at once
            except ValueError:
                self._wake.notify()  # a running one leaves at the next step
                return
        self._finish(seq, "cancelled")

    def _retry_after(self) -> int:
        # A rough wait: one batch generation of average length ahead of the queue.
        return max(1, min(60, len(self._waiting) // max(1, self.limits.max_batch_size) + 1))

    # -- the generation loop (its own thread) -----------------------------------------
    def _run(self) -> None:
        torch.set_grad_enabled(False)
        try:
            while True:
                with self._lock:
                    while not self._stopping and not self._waiting and not self._running:
                        self._wake.wait()
                    if self._stopping:
                        break
                    admitted = self._take_admissible()
                try:
                    self._drop_cancelled()
                    if admitted:
                        self._prefill(admitted)
                    if self._running:
                        self._decode_step()
                except Exception as exc:  # a failed step fails its requests, not the server
                    log.exception("generation step failed")
                    self._fail_all(admitted, exc)
                self.listener.on_step(len(self._running), len(self._waiting))
        finally:
            self._alive = False
            self._fail_all([], RuntimeError("generation loop stopped"))

    def _take_admissible(self) -> list[_Sequence]:
        """Pop waiting requests that fit in the batch (rows, prefill and KV budgets)."""
        taken: list[_Sequence] = []
        rows = len(self._running)
        width = self._cache.width
        longest = 0
        while self._waiting and rows + len(taken) < self.limits.max_batch_size:
            # A cancelled request never waits here: _cancel takes it out of the queue at once.
            n = len(self._waiting[0].request.prompt_ids)
            new_longest = max(longest, n)
            padded = new_longest * (len(taken) + 1)
            kv = (rows + len(taken) + 1) * max(width, new_longest)
            if taken and (padded > self.limits.max_prefill_tokens or kv > self.limits.max_kv_tokens):
                break
            taken.append(self._waiting.popleft())
            longest = new_longest
        return taken

    def _drop_cancelled(self) -> None:
        for i in range(len(self._running) - 1, -1, -1):
            seq = self._running[i]
            if seq.cancelled:
                self._remove_row(i)
                self._finish(seq, "cancelled")

    def _prefill(self, seqs: list[_Sequence]) -> None:
        width = max(len(s.request.prompt_ids) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            prompt = seq.request.prompt_ids
            ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        prefill_cache = DynamicCache(config=self.model.config)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         cache=prefill_cache, use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1, :]
        self._cache.add_rows(prefill_cache, mask)
        self._running.extend(seqs)
        self._accept_tokens(seqs, logits)

    def _decode_step(self) -> None:
        rows = len(self._running)
        tokens = torch.tensor([[s.pending_token] for s in self._running], dtype=torch.long, device=self.device)
        positions = self._cache.positions().unsqueeze(1)
        mask = self._cache.open_columns(1)
        out = self.model(input_ids=tokens, attention_mask=mask, position_ids=positions,
                         cache=self._cache, use_cache=True, logits_to_keep=1)
        self._cache.commit_columns(1)
        assert out.logits.shape[0] == rows
        self._accept_tokens(list(self._running), out.logits[:, -1, :])

    def _accept_tokens(self, seqs: list[_Sequence], logits: torch.Tensor) -> None:
        """Sample one token for each sequence (rows of `logits` in the same order) and emit text."""
        tokens = sample(logits, [s.request.params for s in seqs], [s.generator for s in seqs])
        now = time.perf_counter()
        finished = [seq for seq, token in zip(seqs, tokens) if self._advance(seq, token, now)]
        for seq in finished:
            self._remove_row(self._running.index(seq))

    def _advance(self, seq: _Sequence, token: int, now: float) -> str | None:
        """Account one generated token: emit the text it completes; return the finish reason, if any."""
        seq.generated += 1
        if seq.last_token_at is None:
            self.listener.on_first_token(seq.request.request_id, now - seq.arrived)
        else:
            self.listener.on_token_gap(now - seq.last_token_at)
        seq.last_token_at = now
        seq.pending_token = token
        reason = None
        if token in self.eos_token_ids:
            reason = "stop"
            text = seq.stops.flush()
        else:
            text, hit_stop = seq.stops.feed(seq.detok.push(token))
            if hit_stop:
                reason = "stop"
            elif seq.generated >= seq.request.params.max_tokens:
                reason = "length"
            elif len(seq.request.prompt_ids) + seq.generated >= self.limits.max_model_len:
                reason = "length"
            if reason == "length":
                text += seq.stops.flush()
        if text or reason:
            self._emit(seq, GenerationOutput(text=text, completion_tokens=seq.generated, finish_reason=reason))
        return reason

    def _remove_row(self, index: int) -> None:
        self._cache.remove_row(index)
        last = self._running.pop()
        if index < len(self._running):
            self._running[index] = last

    def _finish(self, seq: _Sequence, reason: str, error: str | None = None) -> None:
        if reason == "cancelled":
            self.listener.on_cancelled(seq.request.request_id)
        self._emit(seq, GenerationOutput(completion_tokens=seq.generated, finish_reason=reason, error=error))

    def _fail_all(self, admitted: list[_Sequence], exc: BaseException) -> None:
        victims = list(self._running) + [s for s in admitted if s not in self._running]
        self._running.clear()
        self._cache = BatchKVCache()
        if self._stopping or not self._alive:
            with self._lock:
                victims += list(self._waiting)
                self._waiting.clear()
        for seq in victims:
            self._finish(seq, "error", error=f"generation failed: {exc}")

    @staticmethod
    def _emit(seq: _Sequence, out: GenerationOutput) -> None:
        try:
            seq.loop.call_soon_threadsafe(seq.stream._queue.put_nowait, out)
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            pass


def _eos_ids(model, tokenizer) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config):
        eos = getattr(source, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        elif eos:
            ids.update(eos)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids
