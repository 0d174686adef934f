"""Chunked prefill: a prompt longer than max_prefill_tokens goes in chunks, running streams keep
decoding between them, and the text is the same as one whole prefill gives (transformers' generate)."""

from __future__ import annotations

import asyncio

import pytest

from model_service.engine.base import EngineLimits, EngineListener, GenerationRequest
from model_service.engine.continuous import ContinuousBatchingEngine
from model_service.engine.llama_runner import LlamaFamilyRunner
from model_service.engine.sampling import SamplingParams

from .test_continuous import greedy_reference, prompt_ids

LONG_QUESTION = ("Summarise this: " + "The river runs past the old mill, the bridge and the school. " * 24
                 + "What is it about?")


class Recorder(EngineListener):
    """The order of prefill passes and decoding steps, as the generation loop reports them."""

    def __init__(self):
        self.events: list[tuple[str, int]] = []

    def on_prefill(self, tokens):
        self.events.append(("prefill", tokens))

    def on_step(self, running, waiting):
        self.events.append(("step", running))


async def collect(engine, request):
    stream = engine.submit(request)  # submit needs the running event loop
    text, tokens = "", 0
    async for out in stream:
        text += out.text
        tokens = out.completion_tokens or tokens
    return text, tokens


@pytest.mark.parametrize("forward", ["transformers", "lean"])
def test_a_prompt_alone_in_chunks_matches_generate(model_and_tokenizer, forward):
    """Nothing else running: the loop must go on with the next chunk by itself (it once waited for
    a new request after the first chunk, and the stream hung)."""
    model, tokenizer = model_and_tokenizer
    prompt = prompt_ids(tokenizer, LONG_QUESTION)
    assert len(prompt) > 300
    (expected,) = greedy_reference(model, tokenizer, [prompt], 20)
    recorder = Recorder()
    engine = ContinuousBatchingEngine(model, tokenizer, EngineLimits(max_prefill_tokens=64), listener=recorder,
                                      forward=LlamaFamilyRunner(model) if forward == "lean" else None)
    engine.start()
    try:
        text, _ = asyncio.run(asyncio.wait_for(
            collect(engine, GenerationRequest("long", prompt, SamplingParams(max_tokens=20))), 60))
    finally:
        engine.shutdown()
    assert text == expected
    chunks = [n for kind, n in recorder.events if kind == "prefill"]
    assert chunks == [64] * (len(prompt) // 64) + ([len(prompt) % 64] if len(prompt) % 64 else [])


def test_running_streams_decode_between_the_chunks_of_a_long_prompt(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    short = prompt_ids(tokenizer, "Count from 1 to 50.")
    long = prompt_ids(tokenizer, LONG_QUESTION)
    expected = greedy_reference(model, tokenizer, [short], 60) + greedy_reference(model, tokenizer, [long], 12)
    recorder = Recorder()
    engine = ContinuousBatchingEngine(model, tokenizer, EngineLimits(max_prefill_tokens=64), listener=recorder)
    engine.start()

    async def scenario():
        running = asyncio.ensure_future(collect(
            engine, GenerationRequest("short", short, SamplingParams(max_tokens=60))))
        while not any(kind == "step" and n == 1 for kind, n in recorder.events):
            await asyncio.sleep(0.01)  # the short stream decodes before the long prompt arrives
        burst = asyncio.ensure_future(collect(
            engine, GenerationRequest("long", long, SamplingParams(max_tokens=12))))
        return await asyncio.wait_for(asyncio.gather(running, burst), 120)

    try:
        (short_text, _), (long_text, _) = asyncio.run(scenario())
    finally:
        engine.shutdown()
    assert [short_text, long_text] == expected
    # Every loop iteration that prefilled a chunk of the long prompt also decoded the short stream:
    # between two prefill passes there is exactly one step.
    events = recorder.events
    passes = [i for i, (kind, _) in enumerate(events) if kind == "prefill"]
    long_chunks = [events[i][1] for i in passes[1:]]  # passes[0] is the short prompt's own prefill
    assert long_chunks == [64] * (len(long) // 64) + ([len(long) % 64] if len(long) % 64 else [])
    for a, b in zip(passes[1:], passes[2:]):
        assert [e for e in events[a + 1 : b]] == [("step", 1)], events[a:b + 1]
