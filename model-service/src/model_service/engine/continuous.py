"""Continuous batching over a plain transformers causal LM.

Every loop iteration: drop cancelled requests, admit waiting ones (one batched prefill),
then run one decoding step for every running request. A request that arrives while
others decode joins at the next step; one that finishes, fails or is cancelled leaves at once.
"""

from __future__ import annotations

import logging
import time

import torch
from transformers import DynamicCache

from .base import EngineLimits, EngineListener
from .generation_loop import GenerationLoopEngine, SequenceState
from .kv_cache import BatchKVCache

log = logging.getLogger(__name__)


class ContinuousBatchingEngine(GenerationLoopEngine):
    def __init__(self, model, tokenizer, limits: EngineLimits, listener: EngineListener | None = None,
                 eos_token_ids: set[int] | None = None) -> None:
        super().__init__(model, tokenizer, limits, listener, eos_token_ids)
        self._cache = BatchKVCache()  # row i belongs to self._running[i]

    def _take_admissible(self) -> list[SequenceState]:
        """Pop waiting requests that fit in the batch (rows, prefill and KV budgets)."""
        taken: list[SequenceState] = []
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

    def _step(self, admitted: list[SequenceState]) -> None:
        self._drop_cancelled()
        if admitted:
            self._prefill(admitted)
        if self._running:
            self._decode_step()

    def _fail_batch(self, admitted: list[SequenceState], exc: BaseException) -> None:
        super()._fail_batch(admitted, exc)
        self._cache = BatchKVCache()  # its rows belonged to the failed sequences

    def _drop_cancelled(self) -> None:
        for i in range(len(self._running) - 1, -1, -1):
            seq = self._running[i]
            if seq.cancelled:
                self._remove_row(i)
                self._finish(seq, "cancelled")

    def _prefill(self, seqs: list[SequenceState]) -> None:
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
        try:
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                             cache=prefill_cache, use_cache=True, logits_to_keep=1)
        except Exception as exc:  # the running batch's cache is untouched: only the newcomers fail
            log.exception("prefill failed")
            for seq in seqs:
                self._finish(seq, "error", error=f"generation failed: {exc}")
            return
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

    def _accept_tokens(self, seqs: list[SequenceState], logits: torch.Tensor) -> None:
        """Sample one token for each sequence (rows of `logits` in the same order) and emit text."""
        now = time.perf_counter()
        finished = [seq for seq, token in zip(seqs, self._sample(seqs, logits)) if self._accept(seq, token, now)]
        for seq in finished:  # stopped, at its limit, or failed alone
            self._remove_row(self._running.index(seq))

    def _remove_row(self, index: int) -> None:
        self._cache.remove_row(index)
        last = self._running.pop()
        if index < len(self._running):
            self._running[index] = last

