"""The serial engine (remote-code models) keeps the service's contract: same text as generate,
stop strings, cancellation."""

from __future__ import annotations

import asyncio

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from model_service.engine.base import GenerationRequest
from model_service.engine.base import EngineLimits
from model_service.engine.continuous import ContinuousBatchingEngine
from model_service.engine.sampling import SamplingParams
from model_service.engine.serial import SerialGenerateEngine

from .test_continuous import QUESTIONS, greedy_reference, prompt_ids, run_engine


@pytest.fixture(scope="module")
def engine(model_dir):
    model, tokenizer = AutoModelForCausalLM.from_pretrained(model_dir).eval(), AutoTokenizer.from_pretrained(model_dir)
    engine = SerialGenerateEngine(model, tokenizer, EngineLimits())
    engine.start()
    yield engine
    engine.shutdown()


def test_serial_engine_matches_generate_and_queues_the_rest(engine):
    model, tokenizer = engine.model, engine.tokenizer
    prompts = [prompt_ids(tokenizer, q) for q in QUESTIONS[:3]]
    expected = greedy_reference(model, tokenizer, prompts, 16)
    requests = [GenerationRequest(str(i), p, SamplingParams(max_tokens=16)) for i, p in enumerate(prompts)]
    assert asyncio.run(run_engine(engine, requests, [0, 0, 0])) == expected


def test_serial_engine_applies_stop_strings_and_cancel(engine):
    tokenizer = engine.tokenizer

    async def scenario():
        stopped = engine.submit(GenerationRequest("s", prompt_ids(tokenizer, QUESTIONS[0]),
                                                  SamplingParams(max_tokens=30, stop=(" France",))))
        outs = [o async for o in stopped]
        long = engine.submit(GenerationRequest("c", prompt_ids(tokenizer, QUESTIONS[3]), SamplingParams(500)))
        seen = []
        async for out in long:
            seen.append(out)
            if len(seen) == 2:
                long.cancel()
        return outs, seen

    outs, seen = asyncio.run(scenario())
    assert "".join(o.text for o in outs) == "The capital of" and outs[-1].finish_reason == "stop"
    assert seen[-1].finish_reason == "cancelled" and seen[-1].completion_tokens < 100
    assert engine.stats().running == 0


@pytest.mark.parametrize("temperature, top_p", [(2.0, 5e-324), (1e-45, 1.0)])
def test_serial_engine_extreme_sampling_values_answer_like_greedy(engine, temperature, top_p):
    prompt = prompt_ids(engine.tokenizer, QUESTIONS[1])
    expected = greedy_reference(engine.model, engine.tokenizer, [prompt], 12)
    params = SamplingParams(max_tokens=12, temperature=temperature, top_p=top_p, seed=3)
    assert asyncio.run(run_engine(engine, [GenerationRequest("x", prompt, params)], [0])) == expected


def test_penalised_request_matches_generate_in_both_engines(engine):
    """repetition_penalty is transformers' RepetitionPenaltyLogitsProcessor (prompt and output): the same text
    as generate's, from the serial and the continuous engine, with the same raw logprobs."""
    model, tokenizer = engine.model, engine.tokenizer
    prompt = prompt_ids(tokenizer, QUESTIONS[2])
    with torch.no_grad():
        expected = tokenizer.decode(model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False,
                                                   repetition_penalty=1.3)[0, len(prompt):], skip_special_tokens=True)
    params = SamplingParams(max_tokens=12, repetition_penalty=1.3, logprobs=True, top_logprobs=2)

    async def collect(on):
        outs = [out async for out in on.submit(GenerationRequest("p", prompt, params))]
        return "".join(o.text for o in outs), [lp for o in outs for lp in o.logprobs]

    continuous = ContinuousBatchingEngine(model, tokenizer, EngineLimits())
    continuous.start()
    try:
        (serial_text, serial_lp), (batched_text, batched_lp) = asyncio.run(collect(engine)), asyncio.run(
            collect(continuous))
    finally:
        continuous.shutdown()
    assert serial_text == batched_text == expected
    assert [lp.token_id for lp in serial_lp] == [lp.token_id for lp in batched_lp]
    assert len(serial_lp) == 12
    assert [lp.logprob for lp in serial_lp] == pytest.approx([lp.logprob for lp in batched_lp], abs=1e-4)
