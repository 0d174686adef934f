"""What every engine shares: the waiting queue and its 503, one generation thread, and each
sequence's bookkeeping (detokenising, stop strings, limits, outputs).

A failure that belongs to one sequence (sampling, stop matching, detokenising) ends that
sequence alone, marked `caused_by_request`; the loop and the other sequences go on.
Generation never runs on the asyncio event loop: outputs are handed back to it with
`call_soon_threadsafe`.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import logging
import threading
import time
from dataclasses import dataclass, field

import torch

from .base import (
    Engine,
    EngineLimits,
    EngineListener,
    EngineStats,
    GenerationOutput,
    GenerationRequest,
    QueueFullError,
    RequestStream,
    RequestTimings,
)
from .constraints import apply_constraints
from .detokenizer import IncrementalDetokenizer, StopStringMatcher
from .sampling import PenaltyHistory, TokenLogprob, sample, token_logprobs

log = logging.getLogger(__name__)


@dataclass
class SequenceState:
    request: GenerationRequest
    stream: RequestStream
    loop: asyncio.AbstractEventLoop
    detok: IncrementalDetokenizer
    stops: StopStringMatcher
    generator: torch.Generator | None
    arrived: float = field(default_factory=time.perf_counter)
    scheduled_at: float | None = None  # when it left the waiting queue for the batch
    first_token_at: float | None = None
    last_token_at: float | None = None
    pending_token: int | None = None
    cancelled: bool = False
    history: PenaltyHistory | None = None  # only for a request with penalties
    pending_logprobs: list[TokenLogprob] = field(default_factory=list)  # not yet emitted
    output_ids: list[int] = field(default_factory=list)  # tokens generated so far
    prefilled: int = 0  # prompt tokens whose KV exists (cached prefix and chunks done)
    past: tuple | None = None  # (keys, values) per layer while the prompt is being prefilled

    @property
    def generated(self) -> int:
        return len(self.output_ids)


class GenerationLoopEngine(Engine):
    """An engine whose subclass decides what one loop iteration does (`_take_admissible`, `_step`)."""

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
        self._waiting: collections.deque[SequenceState] = collections.deque()
        self._running: list[SequenceState] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._alive = False

    @abc.abstractmethod
    def _take_admissible(self) -> list[SequenceState]:
        """Pop the waiting sequences this iteration starts (called with the lock held)."""

    @abc.abstractmethod
    def _step(self, admitted: list[SequenceState]) -> None:
        """One loop iteration: start `admitted`, advance the running sequences."""

    def _fail_batch(self, admitted: list[SequenceState], exc: BaseException) -> None:
        """A step failed outside any one sequence: its sequences end with an error."""
        victims = list(self._running) + [s for s in admitted if s not in self._running]
        self._running.clear()
        for seq in victims:
            self._finish(seq, "error", error=f"generation failed: {exc}")

    # -- called from the event loop ---------------------------------------------------
    def submit(self, request: GenerationRequest) -> RequestStream:
        loop = asyncio.get_running_loop()
        stream = RequestStream(request_id=request.request_id, prompt_tokens=len(request.prompt_ids))
        generator = None
        if request.params.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(request.params.seed)
        seq = SequenceState(request, stream, loop, IncrementalDetokenizer(self.tokenizer),
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

    def _cancel(self, seq: SequenceState) -> None:
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
    def _has_work(self) -> bool:
        """Admitted sequences the loop must go on with without a new arrival."""
        return bool(self._running)

    def _run(self) -> None:
        torch.set_grad_enabled(False)
        try:
            while True:
                with self._lock:
                    while not self._stopping and not self._waiting and not self._has_work():
                        self._wake.wait()
                    if self._stopping:
                        break
                    admitted = self._take_admissible()
                scheduled = time.perf_counter()
                for seq in admitted:
                    if seq.scheduled_at is None:
                        seq.scheduled_at = scheduled
                try:
                    self._step(admitted)
                except Exception as exc:  # a failed step fails its requests, not the server
                    log.exception("generation step failed")
                    self._fail_batch(admitted, exc)
                self.listener.on_step(len(self._running), len(self._waiting))
        finally:
            self._alive = False
            with self._lock:
                waiting = list(self._waiting)
                self._waiting.clear()
            self._fail_batch(waiting, RuntimeError("generation loop stopped"))

    def _sample(self, seqs: list[SequenceState], logits: torch.Tensor) -> list[int | Exception]:
        """One token per sequence; a row whose sampling (or constraint) raises gets its exception instead."""
        params, generators = [s.request.params for s in seqs], [s.generator for s in seqs]
        # a constraint masks its row in place first (logprobs then describe what the grammar allowed, as vLLM's do)
        constraint_faults = apply_constraints(logits, [s.request.constraint for s in seqs])
        histories = self._penalty_histories(seqs, logits.shape[-1])
        try:
            tokens: list[int | Exception] = sample(logits, params, generators, histories)
        except Exception:  # find the rows at fault, so that only they fail
            tokens = []
            for i in range(len(seqs)):
                try:
                    row = slice(i, i + 1)
                    tokens += sample(logits[row], params[row], generators[row], histories[row])
                except Exception as exc:
                    tokens.append(exc)
        for row, exc in constraint_faults.items():
            tokens[row] = exc
        self._note_sampled(seqs, logits, tokens)
        return tokens

    def _penalty_histories(self, seqs: list[SequenceState], vocab_size: int) -> list[PenaltyHistory | None]:
        """Each row's token history, made at its first step and only for a request with penalties."""
        for seq in seqs:
            if seq.history is None and seq.request.params.has_penalties:
                seq.history = PenaltyHistory(seq.request.params, seq.request.prompt_ids, vocab_size, self.device)
        return [seq.history for seq in seqs]

    def _note_sampled(self, seqs: list[SequenceState], logits: torch.Tensor, tokens: list[int | Exception]) -> None:
        """Penalty histories see their new token; rows that asked keep its logprobs until their next output."""
        try:
            logprobs = token_logprobs(logits, [s.request.params for s in seqs], tokens)
        except Exception as exc:  # rare; fail the rows that asked, not the step
            logprobs = [None] * len(seqs)
            for i, seq in enumerate(seqs):
                if seq.request.params.logprobs and not isinstance(tokens[i], Exception):
                    tokens[i] = exc
        for seq, token, logprob in zip(seqs, tokens, logprobs):
            if isinstance(token, Exception):
                continue
            if seq.history is not None:
                seq.history.observe(token)
            if logprob is not None:
                seq.pending_logprobs.append(logprob)

    def _accept(self, seq: SequenceState, token: int | Exception, now: float) -> str | None:
        """`_advance`, with a failure kept to this sequence: it ends with finish reason "error"."""
        try:
            if isinstance(token, Exception):
                raise token
            if seq.request.constraint is not None:
                seq.request.constraint.accept(token)
            return self._advance(seq, token, now)
        except Exception as exc:
            log.exception("request %s failed; the others go on", seq.request.request_id)
            self._finish(seq, "error", error=f"generation failed for this request: {exc}", caused_by_request=True)
            return "error"

    def _advance(self, seq: SequenceState, token: int, now: float) -> str | None:
        """Account one generated token: emit the text it completes; return the finish reason, if any."""
        seq.output_ids.append(token)
        if seq.last_token_at is None:
            seq.first_token_at = now
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
            elif seq.request.constraint is not None and seq.request.constraint.is_terminated():
                reason = "stop"  # the grammar is complete and allows nothing more (not even EOS)
                text += seq.stops.flush()
            elif seq.generated >= seq.request.params.max_tokens:
                reason = "length"
            elif len(seq.request.prompt_ids) + seq.generated >= self.limits.max_model_len:
                reason = "length"
            if reason == "length":
                text += seq.stops.flush()
        timings = self._report_finished(seq, reason, now) if reason else None
        if text or reason:
            logprobs, seq.pending_logprobs = seq.pending_logprobs, []
            self._emit(seq, GenerationOutput(text=text, completion_tokens=seq.generated, finish_reason=reason,
                                             logprobs=logprobs, timings=timings))
        return reason

    def _report_finished(self, seq: SequenceState, reason: str, now: float) -> RequestTimings:
        scheduled = seq.scheduled_at if seq.scheduled_at is not None else now
        first = seq.first_token_at if seq.first_token_at is not None else now
        timings = RequestTimings(
            queue=max(0.0, scheduled - seq.arrived), prefill=max(0.0, first - scheduled) if seq.scheduled_at else 0.0,
            decode=max(0.0, now - first) if seq.first_token_at else 0.0, e2e=max(0.0, now - seq.arrived),
            finish_reason=reason)
        self.listener.on_finished(seq.request.request_id, timings)
        return timings

    def _finish(self, seq: SequenceState, reason: str, error: str | None = None,
                caused_by_request: bool = False) -> None:
        if reason == "cancelled":
            self.listener.on_cancelled(seq.request.request_id)
        timings = self._report_finished(seq, reason, time.perf_counter())
        self._emit(seq, GenerationOutput(completion_tokens=seq.generated, finish_reason=reason, error=error,
                                         caused_by_request=caused_by_request, timings=timings))

    @staticmethod
    def _emit(seq: SequenceState, out: GenerationOutput) -> None:
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
