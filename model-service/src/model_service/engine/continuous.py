"""Continuous batching over a transformers causal LM (or a lean runner of its weights).

Every loop iteration: drop cancelled requests, admit waiting ones, run at most one prefill pass
of at most `max_prefill_tokens` new tokens, then one decoding step for every running request.
So a burst of arrivals, or one very long prompt, never stalls the running streams for more than
one bounded prefill per token (chunked prefill): a prompt longer than the budget is prefilled in
chunks over several iterations while the others keep decoding.

With a prefix cache, a newcomer starts from the KV of the longest cached run of its prompt's
blocks and prefills only the rest. Rows of one prefill pass may then have different amounts of
cached KV; each row's layout in the pass is `[padding][its cached KV][gap][its new tokens]`, the
new tokens of every row ending at the same column and gaps masked out, so one forward pass
serves them all and the positions stay each row's own.
"""

from __future__ import annotations

import logging
import time

import torch
from transformers import DynamicCache

from .base import EngineLimits, EngineListener, EngineStats
from .generation_loop import GenerationLoopEngine, SequenceState
from .kv_cache import BatchKVCache
from .prefix_cache import PrefixCache

log = logging.getLogger(__name__)


class ContinuousBatchingEngine(GenerationLoopEngine):
    def __init__(self, model, tokenizer, limits: EngineLimits, listener: EngineListener | None = None,
                 eos_token_ids: set[int] | None = None, forward=None,
                 prefix_cache: PrefixCache | None = None) -> None:
        super().__init__(model, tokenizer, limits, listener, eos_token_ids)
        # The forward pass: the model itself, or a runner over its weights called the same way.
        self._forward = forward if forward is not None else model
        self.prefix_cache = prefix_cache
        self._cache = BatchKVCache()  # row i belongs to self._running[i]
        # Admitted, prompt not yet wholly prefilled; each holds the KV it has so far (`past`).
        self._prefilling: list[SequenceState] = []

    def stats(self) -> EngineStats:
        return EngineStats(waiting=len(self._waiting), running=len(self._running) + len(self._prefilling),
                           loop_alive=self._alive)

    def _take_admissible(self) -> list[SequenceState]:
        """Pop waiting requests that fit in the batch (rows and the KV budget)."""
        taken: list[SequenceState] = []
        rows = len(self._running) + len(self._prefilling)
        width = self._cache.width
        while self._waiting and rows + len(taken) < self.limits.max_batch_size:
            # A cancelled request never waits here: _cancel takes it out of the queue at once.
            n = len(self._waiting[0].request.prompt_ids)
            kv = (rows + len(taken) + 1) * max(width, n)
            if (rows or taken) and kv > self.limits.max_kv_tokens:
                break
            taken.append(self._waiting.popleft())
        return taken

    def _has_work(self) -> bool:
        # a long prompt between chunks has no running row yet but must not wait for an arrival
        return bool(self._running or self._prefilling)

    def _step(self, admitted: list[SequenceState]) -> None:
        self._drop_cancelled()
        for seq in admitted:
            self._start_prefill(seq)
        if self._prefilling:
            self._prefill_some()
        if self._running:
            self._decode_step()

    def _fail_batch(self, admitted: list[SequenceState], exc: BaseException) -> None:
        pending = [s for s in self._prefilling if s not in admitted]
        self._prefilling.clear()
        super()._fail_batch(admitted + pending, exc)
        self._cache = BatchKVCache()  # its rows belonged to the failed sequences

    def _drop_cancelled(self) -> None:
        for i in range(len(self._running) - 1, -1, -1):
            seq = self._running[i]
            if seq.cancelled:
                self._remove_row(i)
                self._finish(seq, "cancelled")
        for seq in [s for s in self._prefilling if s.cancelled]:
            self._prefilling.remove(seq)
            self._finish(seq, "cancelled")

    # -- prefill ------------------------------------------------------------------------
    def _start_prefill(self, seq: SequenceState) -> None:
        seq.past = None
        seq.prefilled = 0
        if self.prefix_cache is not None:
            hit = self.prefix_cache.lookup(seq.request.prompt_ids, seq.request.cache_salt)
            self.listener.on_prefix_cache(len(seq.request.prompt_ids), hit.tokens if hit else 0)
            if hit is not None:
                seq.past = (hit.keys, hit.values)
                seq.prefilled = hit.tokens
        self._prefilling.append(seq)

    def _prefill_some(self) -> None:
        """One prefill pass: the oldest prompt's next chunk if it does not fit the budget, else as
        many whole remainders from the front of the queue as fit (padded to the longest)."""
        budget = self.limits.max_prefill_tokens
        head = self._prefilling[0]
        remaining = len(head.request.prompt_ids) - head.prefilled
        if remaining > budget:
            seqs, chunk = [head], budget
        else:
            seqs, chunk = [], 0
            for seq in self._prefilling:
                left = len(seq.request.prompt_ids) - seq.prefilled
                widest = max(chunk, left)
                if seqs and widest * (len(seqs) + 1) > budget:
                    break
                seqs.append(seq)
                chunk = widest
        try:
            logits, cache, mask = self._prefill_pass(seqs, chunk)
        except Exception as exc:  # the running batch's cache is untouched: only these fail
            log.exception("prefill failed")
            for seq in seqs:
                self._prefilling.remove(seq)
                self._finish(seq, "error", error=f"generation failed: {exc}")
            return
        done = [s for s in seqs if s.prefilled == len(s.request.prompt_ids)]
        if len(done) < len(seqs):  # one chunk of a long prompt: keep its KV for the next chunk
            (seq,) = seqs
            seq.past = ([layer.keys for layer in cache.layers], [layer.values for layer in cache.layers])
            return
        for seq in seqs:
            self._prefilling.remove(seq)
            seq.past = None
        if self.prefix_cache is not None:
            for row, seq in enumerate(seqs):
                self._remember(seq.request.prompt_ids, seq, [layer.keys[row] for layer in cache.layers],
                               [layer.values[row] for layer in cache.layers], mask[row])
        self._cache.add_rows(cache, mask)
        self._running.extend(seqs)
        self._accept_tokens(seqs, logits)

    def _prefill_pass(self, seqs: list[SequenceState], chunk: int):
        """Forward up to `chunk` new prompt tokens of each sequence after its past KV; returns
        the last position's logits, the pass's cache and its [rows, columns] mask."""
        rows = len(seqs)
        news = [seq.request.prompt_ids[seq.prefilled : seq.prefilled + chunk] for seq in seqs]
        width = max(len(n) for n in news)
        longest_past = max(seq.prefilled for seq in seqs)
        columns = longest_past + width
        ids = torch.full((rows, width), self.pad_token_id, dtype=torch.long)
        positions = torch.zeros((rows, width), dtype=torch.long)
        mask = torch.zeros((rows, columns), dtype=torch.long)
        for row, (seq, new) in enumerate(zip(seqs, news)):
            ids[row, width - len(new):] = torch.tensor(new, dtype=torch.long)
            positions[row, width - len(new):] = torch.arange(seq.prefilled, seq.prefilled + len(new))
            mask[row, longest_past - seq.prefilled : longest_past] = 1
            mask[row, columns - len(new):] = 1
        cache = DynamicCache(config=self.model.config)
        if longest_past:
            self._load_past(cache, seqs, longest_past)
        ids, positions, mask = ids.to(self.device), positions.to(self.device), mask.to(self.device)
        out = self._forward(input_ids=ids, attention_mask=mask, position_ids=positions,
                            cache=cache, use_cache=True, logits_to_keep=1)
        for seq, new in zip(seqs, news):
            seq.prefilled += len(new)
        self.listener.on_prefill(sum(len(n) for n in news))
        return out.logits[:, -1, :], cache, mask

    def _load_past(self, cache: DynamicCache, seqs: list[SequenceState], longest_past: int) -> None:
        """Put each row's past KV right-aligned before the pass's new columns."""
        sample_keys = next(s.past for s in seqs if s.past is not None)[0]
        for i, sample in enumerate(sample_keys):
            shape = (len(seqs), sample.shape[1], longest_past, sample.shape[3])
            keys = torch.zeros(shape, dtype=sample.dtype, device=sample.device)
            values = torch.zeros(shape, dtype=sample.dtype, device=sample.device)
            for row, seq in enumerate(seqs):
                if seq.past is not None:
                    k, v = seq.past[0][i], seq.past[1][i]
                    keys[row, :, longest_past - k.shape[2]:] = k[0]
                    values[row, :, longest_past - v.shape[2]:] = v[0]
            cache.update(keys, values, i)

    # -- decoding -----------------------------------------------------------------------
    def _decode_step(self) -> None:
        rows = len(self._running)
        tokens = torch.tensor([[s.pending_token] for s in self._running], dtype=torch.long, device=self.device)
        positions = self._cache.positions().unsqueeze(1)
        mask = self._cache.open_columns(1)
        out = self._forward(input_ids=tokens, attention_mask=mask, position_ids=positions,
                            cache=self._cache, use_cache=True, logits_to_keep=1)
        self._cache.commit_columns(1)
        assert out.logits.shape[0] == rows
        self._accept_tokens(list(self._running), out.logits[:, -1, :])

    def _accept_tokens(self, seqs: list[SequenceState], logits: torch.Tensor) -> None:
        """Sample one token for each sequence (rows of `logits` in the same order) and emit text."""
        now = time.perf_counter()
        finished = [(seq, reason) for seq, token in zip(seqs, self._sample(seqs, logits))
                    if (reason := self._accept(seq, token, now))]
        for seq, reason in finished:  # stopped, at its limit, or failed alone
            index = self._running.index(seq)
            if self.prefix_cache is not None and reason in ("stop", "length"):
                self._remember_row(index, seq)
            self._remove_row(index)

    def _remove_row(self, index: int) -> None:
        self._cache.remove_row(index)
        last = self._running.pop()
        if index < len(self._running):
            self._running[index] = last

    # -- prefix cache -------------------------------------------------------------------
    def _remember_row(self, index: int, seq: SequenceState) -> None:
        """A finished sequence's prompt and answer (all but the last token, which has no KV yet)."""
        c = self._cache
        tokens = seq.request.prompt_ids + seq.output_ids[:-1]
        mask = c.attention_mask()[index]
        self._remember(tokens, seq, [layer.keys[index] for layer in c.layers],
                       [layer.values[index] for layer in c.layers], mask)

    def _remember(self, tokens: list[int], seq: SequenceState, keys, values, mask: torch.Tensor) -> None:
        try:
            real = mask.bool()
            if int(real.sum()) != len(tokens):  # never store KV that does not belong to these tokens
                log.warning("prefix cache: %d KV columns for %d tokens; not stored", int(real.sum()), len(tokens))
                return
            self.prefix_cache.insert(tokens, seq.request.cache_salt, [k[:, real] for k in keys],
                                     [v[:, real] for v in values])
        except Exception:  # the cache is an optimisation: a failure to store never fails a request
            log.exception("prefix cache insert failed")
