"""Per-sequence constraints in both engines: a constrained row follows its grammar to the end, the
unconstrained rows of the same batch generate exactly what they generate alone."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest
import torch

from model_service.engine.base import EngineLimits, GenerationRequest
from model_service.engine.constraints import Constraint, apply_constraints
from model_service.engine.continuous import ContinuousBatchingEngine
from model_service.engine.grammar import GrammarCompiler, SchemaError
from model_service.engine.sampling import SamplingParams
from model_service.engine.serial import SerialGenerateEngine

from .test_continuous import QUESTIONS, greedy_reference, prompt_ids

PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                           "age": {"type": "integer", "minimum": 0, "maximum": 120},
                                           "pet": {"enum": ["cat", "dog", "none"]}},
          "required": ["name", "age", "pet"], "additionalProperties": False}


@pytest.fixture(scope="module")
def expected(model_and_tokenizer):
    """What each of QUESTIONS answers alone (greedy, 16 tokens)."""
    model, tokenizer = model_and_tokenizer
    return greedy_reference(model, tokenizer, [prompt_ids(tokenizer, q) for q in QUESTIONS], 16)


@pytest.fixture(scope="module")
def grammars(model_and_tokenizer):
    return GrammarCompiler(model_and_tokenizer[1])


async def collect(engine, request):
    return [out async for out in engine.submit(request)]


def run_mixed(engine, tokenizer, grammars, constrained_params):
    """One constrained request (JSON per PERSON) submitted together with the unconstrained QUESTIONS."""
    constrained = GenerationRequest("json", prompt_ids(tokenizer, "Describe a person as JSON."), constrained_params,
                                    constraint=grammars.json_schema_constraint(PERSON))
    plain = [GenerationRequest(str(i), prompt_ids(tokenizer, q), SamplingParams(max_tokens=16))
             for i, q in enumerate(QUESTIONS)]

    async def scenario():
        return await asyncio.gather(collect(engine, constrained), *[collect(engine, r) for r in plain])

    return asyncio.run(scenario())


@pytest.mark.parametrize("engine_class", [ContinuousBatchingEngine, SerialGenerateEngine])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_constrained_row_is_valid_json_and_other_rows_unchanged(model_and_tokenizer, grammars, expected,
                                                                 engine_class, temperature):
    model, tokenizer = model_and_tokenizer
    engine = engine_class(model, tokenizer, EngineLimits())
    engine.start()
    try:
        json_outs, *plain_outs = run_mixed(engine, tokenizer, grammars,
                                           SamplingParams(max_tokens=200, temperature=temperature, seed=7))
    finally:
        engine.shutdown()
    assert json_outs[-1].finish_reason == "stop"
    jsonschema.validate(json.loads("".join(o.text for o in json_outs)), PERSON)
    assert ["".join(o.text for o in outs) for outs in plain_outs] == expected


class _FaultInjectionConstraint(Constraint):
    """Fault injection: a constraint whose mask computation breaks at the third token."""

    def __init__(self) -> None:
        self.calls = 0

    def fill_bitmask(self, bitmask, index):
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("injected constraint fault")
        bitmask[index] = -1

    def accept(self, token):
        pass

    def is_terminated(self):
        return False


def test_fault_injection_broken_constraint_fails_its_sequence_alone(model_and_tokenizer, expected):
    model, tokenizer = model_and_tokenizer
    engine = ContinuousBatchingEngine(model, tokenizer, EngineLimits())
    engine.start()

    async def scenario():
        bad = GenerationRequest("bad", prompt_ids(tokenizer, QUESTIONS[0]), SamplingParams(max_tokens=16),
                                constraint=_FaultInjectionConstraint())
        plain = [GenerationRequest(str(i), prompt_ids(tokenizer, q), SamplingParams(max_tokens=16))
                 for i, q in enumerate(QUESTIONS)]
        return await asyncio.gather(collect(engine, bad), *[collect(engine, r) for r in plain])

    try:
        bad, *good = asyncio.run(scenario())
        alive_after = engine.stats().loop_alive
    finally:
        engine.shutdown()
    assert ["".join(o.text for o in outs) for outs in good] == expected
    assert bad[-1].finish_reason == "error" and "injected constraint fault" in bad[-1].error
    assert bad[-1].caused_by_request and bad[-1].completion_tokens == 2
    assert alive_after


def test_apply_constraints_masks_only_constrained_rows(model_and_tokenizer, grammars):
    tokenizer = model_and_tokenizer[1]
    logits = torch.zeros(3, 49152)
    constraint = grammars.json_schema_constraint({"type": "boolean"})
    assert apply_constraints(logits, [None, constraint, None]) == {}
    assert bool((logits[0] == 0).all()) and bool((logits[2] == 0).all())
    allowed = [tokenizer.decode([t]) for t in torch.isfinite(logits[1]).nonzero().flatten().tolist()]
    assert allowed and all("true".startswith(t) or "false".startswith(t) for t in allowed)


def test_schema_errors_name_the_unsupported_keyword(grammars):
    with pytest.raises(SchemaError) as unsupported:
        grammars.json_schema_constraint({"type": "array", "items": {"type": "integer"}, "uniqueItems": True})
    assert unsupported.value.unsupported == ["uniqueItems"]
    with pytest.raises(SchemaError) as invalid:
        grammars.json_schema_constraint({"type": "strin"})
    assert invalid.value.unsupported == [] and "strin" in str(invalid.value)
