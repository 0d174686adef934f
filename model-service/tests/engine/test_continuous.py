"""The engine against transformers' own generate: same greedy text, whatever joins when."""

from __future__ import annotations

import asyncio

import pytest
import torch

from model_service.engine.base import EngineLimits, GenerationRequest
from model_service.engine.continuous import ContinuousBatchingEngine
from model_service.engine.detokenizer import StopStringMatcher
from model_service.engine.sampling import SamplingParams

QUESTIONS = ["What is the capital of France?", "Write a haiku about the sea.", "Count from 1 to 10.",
             "Tell me a joke about cats and dogs, please, make it long."]
EXPECTED_FINISH_16 = ["stop", "length", "length", "length"]  # how each greedy answer ends within 16 tokens


def greedy_ids(model, prompt, max_new_tokens) -> list[int]:
    """The token ids transformers' own generate answers to one prompt, greedy."""
    with torch.no_grad():
        return model.generate(torch.tensor([prompt]), max_new_tokens=max_new_tokens, do_sample=False)[
            0, len(prompt):].tolist()


def greedy_reference(model, tokenizer, prompts, max_new_tokens):
    """What transformers' own generate answers, one prompt at a time: the text an engine must match."""
    return [tokenizer.decode(greedy_ids(model, p, max_new_tokens), skip_special_tokens=True) for p in prompts]


def prompt_ids(tokenizer, question):
    return tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                         add_generation_prompt=True)["input_ids"]


async def run_engine(engine, requests, delays):
    async def one(request, delay):
        await asyncio.sleep(delay)
        text = ""
        async for out in engine.submit(request):
            text += out.text
        return text

    return await asyncio.gather(*[one(r, d) for r, d in zip(requests, delays)])


def test_staggered_arrivals_match_generate(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompts = [prompt_ids(tokenizer, q) for q in QUESTIONS]
    expected = greedy_reference(model, tokenizer, prompts, 24)
    engine = ContinuousBatchingEngine(model, tokenizer, EngineLimits(max_batch_size=3))
    engine.start()
    try:
        requests = [GenerationRequest(str(i), p, SamplingParams(max_tokens=24)) for i, p in enumerate(prompts)]
        # Arrivals spread over the others' decoding; a batch of 3 makes the 4th wait for a free row.
        got = asyncio.run(run_engine(engine, requests, [0, 0.15, 0.3, 0.05]))
    finally:
        engine.shutdown()
    assert got == expected


def test_cancelled_request_leaves_and_others_finish(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    engine = ContinuousBatchingEngine(model, tokenizer, EngineLimits())
    engine.start()

    async def scenario():
        keep = engine.submit(GenerationRequest("keep", prompt_ids(tokenizer, QUESTIONS[0]), SamplingParams(16)))
        drop = engine.submit(GenerationRequest("drop", prompt_ids(tokenizer, QUESTIONS[3]), SamplingParams(500)))
        outputs = []
        async for out in drop:
            outputs.append(out)
            if len(outputs) == 2:
                drop.cancel()
        text = "".join([o.text async for o in keep])
        return outputs[-1].finish_reason, text

    try:
        reason, text = asyncio.run(scenario())
    finally:
        engine.shutdown()
    assert reason == "cancelled"
    assert "Paris" in text
    assert engine.stats().running == 0


class _PoisonedParams(SamplingParams):
    """Fault injection: reading this request's sampling mode raises, as a sampling bug would."""

    @property
    def greedy(self) -> bool:
        raise RuntimeError("injected sampling fault")


def _poison_stop_matching(monkeypatch):
    """Fault injection: the stop matcher of a request with the stop string "POISON" raises on its third feed."""
    real_feed = StopStringMatcher.feed

    def feed(self, delta):
        if "POISON" in self.stops:
            self.poison_feeds = getattr(self, "poison_feeds", 0) + 1
            if self.poison_feeds == 3:
                raise RuntimeError("injected stop matching fault")
        return real_feed(self, delta)

    monkeypatch.setattr(StopStringMatcher, "feed", feed)


@pytest.mark.parametrize("fault", ["sampling", "stop matching"])
def test_fault_injection_failing_sequence_fails_alone(model_and_tokenizer, monkeypatch, fault):
    model, tokenizer = model_and_tokenizer
    prompts = [prompt_ids(tokenizer, q) for q in QUESTIONS]
    expected = greedy_reference(model, tokenizer, prompts, 16)
    if fault == "sampling":
        poisoned = _PoisonedParams(max_tokens=16, temperature=1.0)
    else:
        _poison_stop_matching(monkeypatch)
        poisoned = SamplingParams(max_tokens=16, stop=("POISON",))
    engine = ContinuousBatchingEngine(model, tokenizer, EngineLimits())
    engine.start()

    async def scenario():
        async def collect(request):
            return [out async for out in engine.submit(request)]

        healthy = [GenerationRequest(str(i), p, SamplingParams(max_tokens=16)) for i, p in enumerate(prompts)]
        return await asyncio.gather(collect(GenerationRequest("poisoned", prompts[0], poisoned)),
                                    *[collect(r) for r in healthy])

    try:
        bad, *good = asyncio.run(scenario())
        alive_after = engine.stats().loop_alive
    finally:
        engine.shutdown()
    assert [outs[-1].finish_reason for outs in good] == EXPECTED_FINISH_16
    assert ["".join(o.text for o in outs) for outs in good] == expected
    assert bad[-1].finish_reason == "error" and f"injected {fault} fault" in bad[-1].error
    assert bad[-1].caused_by_request
    assert alive_after and engine.stats().running == 0
