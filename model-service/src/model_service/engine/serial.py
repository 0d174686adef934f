"""One `model.generate` at a time: the fallback for models the batching engine cannot drive.

Remote-code models such as ChatGLM3-6B bring their own cache layout and `forward`
signature, so the continuous engine (which drives transformers' native `Cache` interface)
cannot batch them. This engine keeps everything else the same — the queue and its 503,
per-request sampling, stop strings, unbroken characters, cancellation within one
decoding step — and lets the model's own `generate` do the decoding, one request at a time.
"""

from __future__ import annotations

import time

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from .continuous import ContinuousBatchingEngine, _Sequence


class _Progress(StoppingCriteria):
    """Sees every new token of the one running request; stops `generate` when the request ends."""

    def __init__(self, engine: "SerialGenerateEngine", seq: _Sequence, prompt_len: int) -> None:
        self.engine, self.seq, self.prompt_len = engine, seq, prompt_len
        self.reason: str | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        if self.reason is None and input_ids.shape[1] > self.prompt_len:
            self.reason = self.engine._advance(self.seq, int(input_ids[0, -1]), time.perf_counter())
        stop = self.reason is not None or self.seq.cancelled
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class SerialGenerateEngine(ContinuousBatchingEngine):
    def _take_admissible(self) -> list[_Sequence]:
        return [self._waiting.popleft()] if self._waiting else []

    def _prefill(self, seqs: list[_Sequence]) -> None:
        (seq,) = seqs
        params = seq.request.params
        ids = torch.tensor([seq.request.prompt_ids], dtype=torch.long, device=self.device)
        progress = _Progress(self, seq, ids.shape[1])
        sampling = ({"do_sample": False} if params.greedy else
                    {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p})
        if seq.generator is not None:
            torch.manual_seed(params.seed)  # generate() samples from the global generator
        self._running.append(seq)  # reported as the batch while it generates
        self.listener.on_step(1, len(self._waiting))
        try:
            self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=params.max_tokens,
                                stopping_criteria=StoppingCriteriaList([progress]),
                                pad_token_id=self.pad_token_id, **sampling)
        finally:
            self._running.clear()
        if progress.reason is None:
            # generate() ended without our criteria deciding (the model's own end condition).
            self._finish(seq, "cancelled" if seq.cancelled else "stop")
