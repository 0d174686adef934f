"""Budget-aware closing (GrammarConstraint.within): whatever the sampler picks, a constrained answer is a
finished, valid document within max_tokens. The adversaries below never choose to close anything (the
longest allowed token that is not a quote, a bracket or EOS; or any allowed token at random), so only the
closing can end the document in time."""

from __future__ import annotations

import json
import random

import jsonschema
import numpy as np
import pytest
import torch

from model_service.engine.grammar import GrammarCompiler

STRINGS = {"type": "array", "items": {"type": "string"}}
CITY = {"type": "object", "properties": {
    "name": {"type": "string"}, "country": {"type": "string"}, "population_millions": {"type": "number"},
    "landmarks": STRINGS}, "required": ["name", "country", "population_millions", "landmarks"],
    "additionalProperties": False}


def obj(required: dict, **extra) -> dict:
    return {"type": "object", "properties": required, "required": list(required), **extra}


# Twenty schemas with unbounded strings and arrays (no maxLength, no maxItems): what a user writes.
SCHEMAS = {
    "city": CITY,
    "strings": STRINGS,
    "nested_arrays": {"type": "array", "items": STRINGS},
    "six_strings": obj({k: {"type": "string"} for k in "abcdef"}, additionalProperties=False),
    "people": {"type": "array", "items": obj({"name": {"type": "string"}, "age": {"type": "integer"}})},
    "at_least_three": {"type": "array", "items": {"type": "string"}, "minItems": 3},
    "long_string": obj({"text": {"type": "string", "minLength": 10}}),
    "string_map": {"type": "object", "additionalProperties": {"type": "string"}},
    "enum_and_list": obj({"kind": {"enum": ["a", "b"]}, "notes": STRINGS}),
    "integers": obj({"values": {"type": "array", "items": {"type": "integer"}}}),
    "deep": obj({"a": obj({"b": obj({"c": obj({"d": {"type": "string"}})})})}),
    "any_of": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "number"}]}},
    "optional": {"type": "object", "properties": {"x": {"type": "string"}, "y": STRINGS}},
    "tags": obj({"tags": {"type": "array", "items": STRINGS}}),
    "pattern": obj({"slug": {"type": "string", "pattern": "^[a-z]+$"}}),
    "flag_and_text": obj({"ok": {"type": "boolean"}, "why": {"type": "string"}}),
    "number": obj({"value": {"type": "number"}}),
    "enums": {"type": "array", "items": {"enum": ["red", "green", "blue"]}},
    "company": obj({"name": {"type": "string"}, "departments": {"type": "array", "items": obj({
        "name": {"type": "string"}, "members": STRINGS})}}),
    "json_object": None,  # OpenAI's {"type": "json_object"}: any object
}
CLOSERS = set('"]}')


@pytest.fixture(scope="module")
def tokenizer(model_and_tokenizer):
    return model_and_tokenizer[1]


@pytest.fixture(scope="module")
def grammars(tokenizer):
    return GrammarCompiler(tokenizer)


def constraint_for(grammars, name):
    schema = SCHEMAS[name]
    return grammars.json_object_constraint() if schema is None else grammars.json_schema_constraint(schema)


def allowed_tokens(constraint, words: int, size: int) -> np.ndarray:
    bitmask = torch.zeros((1, words), dtype=torch.int32)
    constraint.fill_bitmask(bitmask, 0)
    return np.flatnonzero(np.unpackbits(bitmask.numpy().view(np.uint8), bitorder="little")[:size])


def stubborn(texts, eos):
    """The longest allowed token that closes nothing; a closer or EOS only when nothing else is allowed."""
    def pick(allowed, _rng):
        keep_going = [t for t in allowed if t != eos and not CLOSERS & set(texts[t])]
        return int(max(keep_going or allowed, key=lambda t: (len(texts[t]), -t)))
    return pick


def uniform(allowed, rng):
    return int(rng.choice(list(allowed)))


def generate(grammars, tokenizer, name, budget, pick, seed=0):
    """What an engine does with one constrained row: mask, pick, accept, until the grammar ends or the
    budget is spent. Returns (text, tokens generated, whether the grammar ended)."""
    constraint = constraint_for(grammars, name).within(budget)
    planner, rng, tokens = grammars.planner, random.Random(seed), []
    while len(tokens) < budget and not constraint.is_terminated():
        token = pick(allowed_tokens(constraint, planner.words, planner.size), rng)
        constraint.accept(token)
        tokens.append(token)
    text = tokenizer.decode([t for t in tokens if t != tokenizer.eos_token_id])
    return text, len(tokens), constraint.is_terminated()


def shortest(grammars, name) -> int:
    return len(constraint_for(grammars, name).shortest_completion())


def check(text, name):
    document = json.loads(text)
    if SCHEMAS[name] is None:
        assert isinstance(document, dict)
    else:
        jsonschema.validate(document, SCHEMAS[name])


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_a_stubborn_sampler_still_ends_with_a_valid_document_within_the_budget(grammars, tokenizer, name):
    pick = stubborn(grammars.planner.texts, tokenizer.eos_token_id)
    least = shortest(grammars, name)
    for budget in sorted({least, least + 3, 24, 48}):
        if budget < least:
            continue
        text, generated, ended = generate(grammars, tokenizer, name, budget, pick)
        assert ended and generated <= budget, (name, budget, generated, text)
        check(text, name)


def lengthening(grammars, constraint_box):
    """The allowed token after which the way out is longest (of at most 120 tried): an adversary that commits
    to the long enum value, the long key, the next required object, at the worst moment."""
    def pick(allowed, rng):
        constraint = constraint_box[0]
        tried = list(allowed) if len(allowed) <= 120 else rng.sample(list(allowed), 120)
        return max((int(t) for t in tried), key=lambda t: (grammars.planner.length_after(
            constraint.matcher, constraint.lex, t, 400), -t))
    return pick


LONG = "abcdefghij klmnopqrst uvwxyz 0123456789 abcdefghij klmnopqrst"
COMMITTING = {  # where a token that opens nothing can still commit to a long way out
    "enum_value": obj({"k": {"enum": ["a", LONG]}}),
    "long_key": {"type": "object", "properties": {"a": {"type": "string"}, "a_" + LONG.replace(" ", "_"): {
        "type": "string"}}, "required": ["a"]},
    "list_of_enum": {"type": "array", "items": {"enum": ["x", LONG]}},
    "number_enum": obj({"n": {"enum": [1, 1234567]}}),
    "required_items": {"type": "array", "items": obj({k: {"type": "string"} for k in "abcdefgh"})},
    # the same token ("a") allowed at every step of one string, leading further each time
    "repeating_enum": obj({"k": {"enum": ["aaaa", "a" * 60]}}),
    "list_of_repeating_enum": {"type": "array", "items": {"enum": ["aaaa", "a" * 60]}},
}


@pytest.mark.parametrize("name", list(COMMITTING))
def test_a_sampler_that_lengthens_the_way_out_still_ends_within_the_budget(grammars, tokenizer, name, monkeypatch):
    """Before, a digit or a letter of an enum value was trusted to lengthen the way out by one token at most:
    "1234" of the enum [1, 1234567] was cut at the budget; and a look-ahead for string content was reused on
    the next step, where the same "a" leads further into "aaaa...a"."""
    monkeypatch.setitem(SCHEMAS, name, COMMITTING[name])
    least = shortest(grammars, name)
    assert least <= 6  # the smallest document, not the long enum value
    for budget in sorted({least, least + 2, least + 6, 16, 32}):
        constraint = constraint_for(grammars, name).within(budget)
        pick, rng, tokens = lengthening(grammars, [constraint]), random.Random(0), []
        while len(tokens) < budget and not constraint.is_terminated():
            token = pick(allowed_tokens(constraint, grammars.planner.words, grammars.planner.size), rng)
            constraint.accept(token)
            tokens.append(token)
        text = tokenizer.decode([t for t in tokens if t != tokenizer.eos_token_id])
        assert constraint.is_terminated(), (name, budget, text)
        check(text, name)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", ["city", "company", "nested_arrays", "json_object", "any_of", "string_map"])
def test_a_random_sampler_still_ends_with_a_valid_document_within_the_budget(grammars, tokenizer, name, seed):
    text, generated, ended = generate(grammars, tokenizer, name, 40, uniform, seed)
    assert ended and generated <= 40, (name, seed, generated, text)
    check(text, name)


def test_the_shortest_completion_is_valid_and_short(grammars, tokenizer):
    """From the start, the way out is the smallest document: what the 400 for a too-small budget quotes."""
    path = constraint_for(grammars, "city").shortest_completion()  # the grammar stops at "}": no EOS needed
    assert json.loads(tokenizer.decode(path)) == {"name": "", "country": "", "population_millions": 0,
                                                       "landmarks": []}


def test_without_a_budget_nothing_is_forced(grammars, tokenizer):
    """The same stubborn sampler, no budget: it never closes the list (what every server did before)."""
    constraint = grammars.json_schema_constraint(STRINGS)
    pick = stubborn(grammars.planner.texts, tokenizer.eos_token_id)
    for _ in range(60):
        constraint.accept(pick(allowed_tokens(constraint, grammars.planner.words, grammars.planner.size), None))
    assert not constraint.is_terminated() and not constraint.closing


def test_cap_arrays_bounds_only_what_the_schema_leaves_unbounded():
    from model_service.engine.grammar import cap_arrays

    schema = {"type": "object", "properties": {
        "items": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},  # a property "items"
        "few": {"type": "array", "maxItems": 2}, "many": {"type": "array", "minItems": 5},
        "either": {"type": ["array", "null"]}, "tuple": {"prefixItems": [{"type": "integer"}]},
        "fixed": {"const": {"type": "array"}}, "ref": {"$ref": "#/$defs/list"}},
        "$defs": {"list": {"type": "array"}}}
    assert cap_arrays(schema, 3) == {"type": "object", "properties": {
        "items": {"type": "array", "items": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                  "maxItems": 3},
        "few": {"type": "array", "maxItems": 2}, "many": {"type": "array", "minItems": 5, "maxItems": 5},
        "either": {"type": ["array", "null"], "maxItems": 3}, "tuple": {"prefixItems": [{"type": "integer"}],
                                                                        "maxItems": 3},
        "fixed": {"const": {"type": "array"}}, "ref": {"$ref": "#/$defs/list"}},
        "$defs": {"list": {"type": "array", "maxItems": 3}}}


def test_with_max_array_items_a_stubborn_sampler_ends_the_list_at_the_cap(grammars, tokenizer):
    constraint = grammars.json_schema_constraint(CITY, max_array_items=2)
    pick = stubborn(grammars.planner.texts, tokenizer.eos_token_id)
    tokens = []
    while not constraint.is_terminated() and len(tokens) < 400:
        tokens.append(pick(allowed_tokens(constraint, grammars.planner.words, grammars.planner.size), None))
        constraint.accept(tokens[-1])
    assert constraint.is_terminated()  # without a budget: the cap alone ended the list
    document = json.loads(tokenizer.decode([t for t in tokens if t != tokenizer.eos_token_id]))
    jsonschema.validate(document, CITY)
    assert len(document["landmarks"]) == 2
