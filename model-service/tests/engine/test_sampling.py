"""sample() is numerically safe for every value the API accepts (temperature in [0, 2], top_p in (0, 1])."""

from __future__ import annotations

import pytest
import torch

from model_service.engine.sampling import GREEDY_TEMPERATURE_EPSILON, SamplingParams, sample

VOCAB = 50


def logits_with_top(token: int, dtype=torch.float32) -> torch.Tensor:
    logits = torch.linspace(-5, 5, VOCAB).roll(token - (VOCAB - 1)).to(dtype)
    assert int(logits.argmax()) == token
    return logits[None, :]


@pytest.mark.parametrize("temperature, top_p", [
    (2.0, 5e-324),  # top_p underflows to 0 in float32
    (1.0, 1e-45),
    (1e-45, 1.0),  # logits / temperature overflows to inf
    (5e-324, 0.5),
    (GREEDY_TEMPERATURE_EPSILON / 2, 1.0),
])
def test_extreme_parameters_pick_the_top_token(temperature, top_p):
    params = SamplingParams(max_tokens=1, temperature=temperature, top_p=top_p, seed=1)
    generator = torch.Generator().manual_seed(1)
    assert sample(logits_with_top(7), [params], [generator]) == [7]


def test_temperature_below_epsilon_is_greedy():
    assert SamplingParams(1, temperature=GREEDY_TEMPERATURE_EPSILON / 2).greedy
    assert not SamplingParams(1, temperature=GREEDY_TEMPERATURE_EPSILON).greedy


def test_smallest_sampling_temperature_stays_finite_in_half_precision():
    params = SamplingParams(max_tokens=1, temperature=GREEDY_TEMPERATURE_EPSILON)
    logits = logits_with_top(3, torch.float16) * 1000  # near float16's maximum
    assert sample(logits, [params], [torch.Generator().manual_seed(0)]) == [3]


def test_masked_and_non_finite_logits_never_raise():
    logits = torch.full((3, VOCAB), float("-inf"))
    logits[0, 11] = 1.0  # all but one token masked out
    logits[1, :] = float("nan")  # a broken row: still an answer, not an exception
    logits[2, 4] = float("inf")
    params = [SamplingParams(max_tokens=1, temperature=1.0, top_p=0.9)] * 3
    tokens = sample(logits, params, [torch.Generator().manual_seed(0) for _ in range(3)])
    assert tokens[0] == 11 and tokens[2] == 4
    assert 0 <= tokens[1] < VOCAB


def test_mixed_batch_keeps_each_rows_choice():
    logits = torch.cat([logits_with_top(1), logits_with_top(2), logits_with_top(3)])
    params = [SamplingParams(1), SamplingParams(1, temperature=2.0, top_p=5e-324), SamplingParams(1, temperature=1e-45)]
    assert sample(logits, params, [None, torch.Generator().manual_seed(0), None]) == [1, 2, 3]
