"""Automatic prefix caching: the cache itself (keys, salts, eviction) and the engine with it
(the same greedy text as without, hits where a prompt repeats or a conversation grows)."""

from __future__ import annotations

import asyncio

import pytest
import torch

from model_service.engine.base import EngineLimits, EngineListener, GenerationRequest
from model_service.engine.continuous import ContinuousBatchingEngine
from model_service.engine.llama_runner import LlamaFamilyRunner
from model_service.engine.prefix_cache import PrefixCache
from model_service.engine.sampling import SamplingParams

from .test_continuous import greedy_ids, greedy_reference


def kv(tokens: int, layers: int = 2, heads: int = 1, dim: int = 2, offset: float = 0.0):
    """Per-layer [heads, tokens, dim] keys and values whose numbers say which token they belong to."""
    base = torch.arange(tokens, dtype=torch.float32).view(1, tokens, 1).expand(heads, tokens, dim) + offset
    return [base + 100 * i for i in range(layers)], [-(base + 100 * i) for i in range(layers)]


# -- the cache ----------------------------------------------------------------------------
def test_lookup_returns_the_longest_cached_run_of_whole_blocks_and_leaves_one_token():
    cache = PrefixCache(capacity_tokens=64, block_tokens=4)
    tokens = list(range(10, 22))  # 12 tokens: 3 blocks
    assert cache.insert(tokens, None, *kv(12)) == 3
    hit = cache.lookup(tokens, None)  # all 12 cached, but the last token must be prefilled: 2 blocks
    assert hit.tokens == 8
    assert torch.equal(hit.keys[1][0], kv(12)[0][1][:, :8])
    assert torch.equal(hit.values[0][0], kv(12)[1][0][:, :8])
    longer = cache.lookup(tokens + [99, 98, 97, 96, 95], None)
    assert longer.tokens == 12
    assert cache.lookup([10, 11, 12, 0] + tokens[4:], None) is None  # first block differs: nothing
    assert (cache.queries, cache.hits) == (12 + 17 + 12, 8 + 12)


def test_a_different_salt_never_shares_an_entry():
    cache = PrefixCache(capacity_tokens=64, block_tokens=4)
    tokens = list(range(9))
    cache.insert(tokens, "key-a", *kv(9))
    assert cache.lookup(tokens, "key-a").tokens == 8
    assert cache.lookup(tokens, "key-b") is None
    assert cache.lookup(tokens, None) is None
    cache.insert(tokens, "key-b", *kv(9, offset=0.5))
    assert torch.equal(cache.lookup(tokens, "key-b").keys[0][0], kv(9, offset=0.5)[0][0][:, :8])
    assert torch.equal(cache.lookup(tokens, "key-a").keys[0][0], kv(9)[0][0][:, :8])


def test_eviction_is_least_recently_used_and_takes_a_chain_tail_first():
    cache = PrefixCache(capacity_tokens=16, block_tokens=4)  # 4 blocks
    first, second = list(range(0, 12)), list(range(100, 112))  # 3 blocks each
    cache.insert(first + [1], None, *kv(13))
    cache.insert(second + [1], None, *kv(13))  # 6 blocks > 4: first's two tail blocks go
    assert cache.cached_tokens == 16
    assert cache.lookup(second + [1], None).tokens == 12
    assert cache.lookup(first + [1], None).tokens == 4  # its head block survived, not its tail
    cache.insert(list(range(200, 204)) + [1], None, *kv(5))  # one more block: LRU is second's tail
    assert cache.lookup(second + [1], None).tokens == 8
    assert cache.lookup(first + [1], None).tokens == 4


def test_capacity_zero_stores_nothing():
    cache = PrefixCache(capacity_tokens=0, block_tokens=4)
    assert cache.insert(list(range(9)), None, *kv(9)) == 0
    assert cache.lookup(list(range(9)), None) is None


# -- the engine with it ---------------------------------------------------------------------
SYSTEM = ("You are the help desk of a hardware store. Answer in one short sentence, politely, "
          "and name the aisle where the customer finds what they ask for. ") * 3
QUESTIONS = ["Where are the hammers?", "Do you sell paint?", "I need screws.", "Where is the garden hose?"]


class Hits(EngineListener):
    def __init__(self):
        self.lookups: list[tuple[int, int]] = []

    def on_prefix_cache(self, queried, hit):
        self.lookups.append((queried, hit))


def common(a: list[int], b: list[int]) -> int:
    """How many leading tokens two prompts share."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def chat(tokenizer, messages):
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True)["input_ids"]


async def answer(engine, request):
    text = ""
    async for out in engine.submit(request):
        text += out.text
    return text


def serve(engine, requests, sequential=True):
    async def run():
        if sequential:
            return [await asyncio.wait_for(answer(engine, r), 60) for r in requests]
        return await asyncio.wait_for(asyncio.gather(*[answer(engine, r) for r in requests]), 120)
    return asyncio.run(run())


@pytest.mark.parametrize("forward", ["transformers", "lean"])
def test_shared_system_prompt_hits_and_answers_are_unchanged(model_and_tokenizer, forward):
    model, tokenizer = model_and_tokenizer
    prompts = [chat(tokenizer, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}])
               for q in QUESTIONS]
    expected = greedy_reference(model, tokenizer, prompts, 16)
    hits, cache = Hits(), PrefixCache(capacity_tokens=4096, block_tokens=16)
    engine = ContinuousBatchingEngine(model, tokenizer, EngineLimits(), listener=hits, prefix_cache=cache,
                                      forward=LlamaFamilyRunner(model) if forward == "lean" else None)
    engine.start()
    try:
        first = serve(engine, [GenerationRequest("0", prompts[0], SamplingParams(max_tokens=16))])
        rest = serve(engine, [GenerationRequest(str(i), p, SamplingParams(max_tokens=16))
                              for i, p in enumerate(prompts[1:], 1)], sequential=False)
    finally:
        engine.shutdown()
    assert first + rest == expected
    # each later prompt finds the whole blocks it has in common with the first (system prompt and template)
    assert hits.lookups == [(len(prompts[0]), 0)] + [(len(p), common(prompts[0], p) // 16 * 16)
                                                      for p in prompts[1:]]
    assert [common(prompts[0], p) // 16 * 16 for p in prompts[1:]] == [96, 96, 96]


def test_a_growing_conversation_reuses_the_previous_answer(model_and_tokenizer):
    """Turn 2 resends turn 1's question and answer: both come from the cache, the answer too."""
    model, tokenizer = model_and_tokenizer
    turn1 = [{"role": "user", "content": "Name three colours of the rainbow."}]
    prompt1 = chat(tokenizer, turn1)
    answer1_ids = greedy_ids(model, prompt1, 40)
    answer1 = tokenizer.decode(answer1_ids, skip_special_tokens=True)
    turn2 = turn1 + [{"role": "assistant", "content": answer1}, {"role": "user", "content": "And two more?"}]
    prompt2 = chat(tokenizer, turn2)
    (expected2,) = greedy_reference(model, tokenizer, [prompt2], 16)
    hits = Hits()
    engine = ContinuousBatchingEngine(model, tokenizer, EngineLimits(), listener=hits,
                                      prefix_cache=PrefixCache(4096, 16))
    engine.start()
    try:
        got = serve(engine, [GenerationRequest("t1", prompt1, SamplingParams(max_tokens=40)),
                             GenerationRequest("t2", prompt2, SamplingParams(max_tokens=16))])
    finally:
        engine.shutdown()
    assert got == [answer1, expected2]
    # the cache holds turn 1's prompt and its answer but the last token (which had no KV yet)
    shared = common(prompt1 + answer1_ids[:-1], prompt2)
    assert hits.lookups[1] == (len(prompt2), shared // 16 * 16)
    assert hits.lookups[1][1] > len(prompt1)  # part of the answer was served from the cache


def test_salts_isolate_and_a_tiny_cache_evicts_without_changing_answers(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompts = [chat(tokenizer, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}])
               for q in QUESTIONS]
    expected = greedy_reference(model, tokenizer, prompts, 8)
    hits, cache = Hits(), PrefixCache(capacity_tokens=64, block_tokens=16)  # less than one system prompt
    engine = ContinuousBatchingEngine(model, tokenizer, EngineLimits(), listener=hits, prefix_cache=cache)
    engine.start()
    try:
        got = serve(engine, [GenerationRequest(str(i), p, SamplingParams(max_tokens=8), cache_salt=f"key-{i // 2}")
                             for i, p in enumerate(prompts)])
    finally:
        engine.shutdown()
    assert got == expected
    assert cache.cached_tokens <= 64
    # key-0, key-0, key-1, key-1. Each chain keeps only its head 4 blocks (64 of ~96 shared tokens);
    # the second key-0 request finds those, the first key-1 request finds nothing although its
    # system prompt is the same (salts never share), and its insert evicts key-0's blocks.
    assert [hit for _, hit in hits.lookups] == [0, 64, 0, 64]
