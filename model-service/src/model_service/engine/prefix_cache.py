"""Automatic prefix caching: the KV of token blocks seen before, kept in bounded memory.

Keyed like vLLM's and nano-vllm's block managers: a prompt is cut into blocks of `block_tokens`;
block i's key hashes block i-1's key, block i's token ids and the request's cache salt, so a key
names the whole prefix up to that block and equal keys mean equal KV. A request reuses the
longest run of cached blocks from its start and prefills only the rest; a system prompt plus
a turn, or a conversation resent with one more turn, hits.

Storage is one tensor per block, `[layers, 2 (k, v), kv_heads, block_tokens, head_dim]`, copied
in when a sequence's prompt is prefilled and when it finishes (its answer is part of the next
turn's prompt), and copied out into the newcomer's prefill cache: nothing is shared with a
running batch, so eviction never has to wait for a request.

Eviction is least-recently-used, and a hit refreshes a prefix's blocks last-to-first so that a
chain loses its tail before its head (a head evicted first would strand the rest of the chain).
Requests with different salts (the gateway sends one per API key when isolation is on) never
share an entry, even for identical prompts.
"""

from __future__ import annotations

import collections
import hashlib
import struct
import threading
from dataclasses import dataclass

import torch


@dataclass
class PrefixHit:
    tokens: int  # how many prompt tokens the cache supplies (a multiple of the block size)
    keys: list[torch.Tensor]  # per layer [1, kv_heads, tokens, head_dim]
    values: list[torch.Tensor]


class PrefixCache:
    def __init__(self, capacity_tokens: int, block_tokens: int = 16) -> None:
        if block_tokens < 1:
            raise ValueError("block_tokens must be at least 1")
        self.block_tokens = block_tokens
        self.capacity_blocks = capacity_tokens // block_tokens
        self._blocks: collections.OrderedDict[bytes, torch.Tensor] = collections.OrderedDict()
        self._lock = threading.Lock()  # the generation thread writes; metrics and tests read
        self.queries = 0  # prompt tokens looked up (vLLM's prefix_cache_queries)
        self.hits = 0  # of those, tokens served from the cache (vLLM's prefix_cache_hits)

    @property
    def cached_tokens(self) -> int:
        return len(self._blocks) * self.block_tokens

    def block_keys(self, token_ids: list[int], salt: str | None, limit: int | None = None) -> list[bytes]:
        """The chained key of every full block of `token_ids` (at most `limit` tokens' worth)."""
        n = len(token_ids) if limit is None else min(limit, len(token_ids))
        keys: list[bytes] = []
        parent = hashlib.blake2b((salt or "").encode("utf-8"), digest_size=16).digest()
        b = self.block_tokens
        for start in range(0, n - b + 1, b):
            block = token_ids[start : start + b]
            parent = hashlib.blake2b(parent + struct.pack(f"<{b}q", *block), digest_size=16).digest()
            keys.append(parent)
        return keys

    def lookup(self, token_ids: list[int], salt: str | None) -> PrefixHit | None:
        """The longest cached prefix, leaving at least one token to prefill (its logits start decoding)."""
        keys = self.block_keys(token_ids, salt, limit=len(token_ids) - 1)
        found: list[torch.Tensor] = []
        with self._lock:
            self.queries += len(token_ids)
            for key in keys:
                block = self._blocks.get(key)
                if block is None:
                    break
                found.append(block)
            for key in reversed(keys[: len(found)]):  # head ends most recent: evicted last
                self._blocks.move_to_end(key)
            self.hits += len(found) * self.block_tokens
        if not found:
            return None
        kv = torch.cat(found, dim=3) if len(found) > 1 else found[0]  # [layers, 2, heads, tokens, dim]
        return PrefixHit(tokens=kv.shape[3], keys=[layer[0].unsqueeze(0) for layer in kv],
                         values=[layer[1].unsqueeze(0) for layer in kv])

    def insert(self, token_ids: list[int], salt: str | None, keys: list[torch.Tensor],
               values: list[torch.Tensor]) -> int:
        """Store the full blocks of a sequence whose KV is given per layer as [kv_heads, tokens, dim]
        (tokens >= len(token_ids) are ignored). Returns how many blocks were new."""
        if self.capacity_blocks == 0:
            return 0
        block_keys = self.block_keys(token_ids, salt)
        b = self.block_tokens
        added = 0
        with self._lock:
            new = [i for i, key in enumerate(block_keys) if key not in self._blocks]
            if new:
                # one copy of the new span for all layers, then a slice per block
                span = slice(new[0] * b, (new[-1] + 1) * b)
                kv = torch.stack([torch.stack((k[:, span], v[:, span])) for k, v in zip(keys, values)])
                for i in new:
                    offset = (i - new[0]) * b
                    self._blocks[block_keys[i]] = kv[:, :, :, offset : offset + b].clone()
                added = len(new)
            # A new prefix is most recent head-first as well, so its tail goes first under pressure.
            for key in reversed(block_keys):
                self._blocks.move_to_end(key)
            while len(self._blocks) > self.capacity_blocks:
                self._blocks.popitem(last=False)
        return added

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()
