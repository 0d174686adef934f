"""One `model.generate` at a time: the fallback for models the batching engine cannot drive.

Remote-code models such as ChatGLM3-6B bring their own cache layout and `forward`
signature, so the continuous engine (which drives transformers' native `Cache` interface)
cannot batch them. This engine keeps everything else the same (the shared generation loop:
the queue and its 503, per-request sampling with its own generator, stop strings, unbroken
characters, cancellation within one decoding step) and lets the model's own `generate` do
the decoding, one request at a time.
"""

from __future__ import annotations

import time

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from .generation_loop import GenerationLoopEngine, SequenceState


class _SequenceFault(Exception):
    """Raised out of `generate` by our own per-request code, so the failure is the request's alone."""


class _SampleOwnWay(LogitsProcessor):
    """Samples with the engine's `sample` (its numeric guards, the request's own generator) and
    leaves `generate`'s greedy search only that token to pick."""

    def __init__(self, engine: "SerialGenerateEngine", seq: SequenceState) -> None:
        self.engine, self.seq = engine, seq

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        (token,) = self.engine._sample([self.seq], scores)
        if isinstance(token, Exception):
            raise _SequenceFault(str(token)) from token
        forced = torch.full_like(scores, float("-inf"))
        forced[:, token] = 0.0
        return forced


class _Progress(StoppingCriteria):
    """Sees every new token of the one running request; stops `generate` when the request ends."""

    def __init__(self, engine: "SerialGenerateEngine", seq: SequenceState, prompt_len: int) -> None:
        self.engine, self.seq, self.prompt_len = engine, seq, prompt_len
        self.reason: str | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        if self.reason is None and input_ids.shape[1] > self.prompt_len:
            self.reason = self.engine._accept(self.seq, int(input_ids[0, -1]), time.perf_counter())
        stop = self.reason is not None or self.seq.cancelled
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class SerialGenerateEngine(GenerationLoopEngine):
    def _take_admissible(self) -> list[SequenceState]:
        return [self._waiting.popleft()] if self._waiting else []

    def _step(self, admitted: list[SequenceState]) -> None:
        if not admitted:
            return
        (seq,) = admitted
        params = seq.request.params
        ids = torch.tensor([seq.request.prompt_ids], dtype=torch.long, device=self.device)
        progress = _Progress(self, seq, ids.shape[1])
        # Always generate's greedy search: a sampled or constrained request's token is chosen by
        # _SampleOwnWay (which applies the request's constraint, as the batching engine does).
        own_way = not params.greedy or seq.request.constraint is not None
        processors = LogitsProcessorList([_SampleOwnWay(self, seq)] if own_way else [])
        self._running.append(seq)  # reported as the batch while it generates
        self.listener.on_step(1, len(self._waiting))
        try:
            self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=params.max_tokens,
                                do_sample=False, temperature=None, top_p=None, top_k=None,
                                logits_processor=processors, stopping_criteria=StoppingCriteriaList([progress]),
                                pad_token_id=self.pad_token_id)
        except _SequenceFault as exc:
            self._finish(seq, "error", error=f"generation failed for this request: {exc}", caused_by_request=True)
            return
        finally:
            self._running.clear()
        if progress.reason is None:
            # generate() ended without our criteria deciding (the model's own end condition).
            self._finish(seq, "cancelled" if seq.cancelled else "stop")
