"""sample() is numerically safe for every value the API accepts (temperature in [0, 2], top_p in (0, 1]),
and applies logit bias and penalties per row; logprobs come from the raw logits."""

from __future__ import annotations

import math

import pytest
import torch

from model_service.engine.sampling import (
    GREEDY_TEMPERATURE_EPSILON,
    LOGPROB_FLOOR,
    PenaltyHistory,
    SamplingParams,
    apply_controls,
    sample,
    token_logprobs,
)

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


# -- per-row controls: logit bias and penalties change only the rows that ask --------------------
def flat_logits(rows: int = 1) -> torch.Tensor:
    """Token 0 leads by a little; every other token is equal."""
    logits = torch.zeros(rows, VOCAB)
    logits[:, 0] = 1.0
    return logits


def history(params: SamplingParams, prompt: list[int], output: list[int]) -> PenaltyHistory:
    h = PenaltyHistory(params, prompt, VOCAB)
    for token in output:
        h.observe(token)
    return h


def test_logit_bias_forces_and_forbids_per_row():
    forced = SamplingParams(1, logit_bias=((9, 100.0),))
    banned = SamplingParams(1, logit_bias=((0, -100.0),))
    plain = SamplingParams(1)
    logits = flat_logits(3)
    logits[2, 5] = 0.5  # the plain row's runner-up, to show it is untouched
    tokens = sample(logits, [forced, banned, plain], [None] * 3, [None] * 3)
    assert tokens[0] == 9 and tokens[1] != 0 and tokens[2] == 0


def test_frequency_penalty_grows_with_each_occurrence():
    params = SamplingParams(1, frequency_penalty=0.4)
    once = apply_controls(flat_logits(), [params], [history(params, [], [0])])
    thrice = apply_controls(flat_logits(), [params], [history(params, [], [0, 0, 0])])
    assert once[0, 0].item() == pytest.approx(1.0 - 0.4)
    assert thrice[0, 0].item() == pytest.approx(1.0 - 1.2)
    assert sample(flat_logits(), [params], [None], [history(params, [], [0, 0, 0])]) != [0]


def test_presence_penalty_counts_a_token_once():
    params = SamplingParams(1, presence_penalty=0.7)
    out = apply_controls(flat_logits(), [params], [history(params, [], [0, 0, 0, 3])])
    assert out[0, 0].item() == pytest.approx(0.3)
    assert out[0, 3].item() == pytest.approx(-0.7)
    assert out[0, 4].item() == 0.0


def test_repetition_penalty_covers_prompt_and_output_and_keeps_sign():
    params = SamplingParams(1, repetition_penalty=2.0)
    logits = flat_logits()
    logits[0, 1] = -1.0
    out = apply_controls(logits, [params], [history(params, [1], [0])])
    assert out[0, 0].item() == pytest.approx(0.5)  # positive: divided
    assert out[0, 1].item() == pytest.approx(-2.0)  # negative (from the prompt): multiplied
    assert out[0, 2].item() == 0.0


def test_rows_without_controls_are_untouched_and_share_the_tensor():
    logits = flat_logits(2)
    assert apply_controls(logits, [SamplingParams(1), SamplingParams(1, temperature=1.0)], None) is logits
    penalised = SamplingParams(1, frequency_penalty=2.0)
    out = apply_controls(logits, [SamplingParams(1), penalised], [None, history(penalised, [], [0])])
    assert torch.equal(out[0], logits[0]) and out[1, 0].item() == pytest.approx(-1.0)
    assert logits[1, 0].item() == 1.0  # the caller's raw logits are not changed


def test_mixed_batch_of_controls_matches_each_row_alone():
    params = [SamplingParams(1, frequency_penalty=0.5, presence_penalty=0.2), SamplingParams(1),
              SamplingParams(1, repetition_penalty=1.3, logit_bias=((4, 2.0),)),
              SamplingParams(1, temperature=1.0, seed=3, frequency_penalty=-1.0)]
    torch.manual_seed(0)
    logits = torch.randn(4, VOCAB)
    outputs = [[1, 2, 2], [], [3, 4], [5]]
    histories = [history(p, [7, 8], o) if p.has_penalties else None for p, o in zip(params, outputs)]
    together = apply_controls(logits, params, histories)
    for i in range(4):
        alone = apply_controls(logits[i : i + 1], params[i : i + 1], histories[i : i + 1])
        assert torch.allclose(together[i], alone[0])


def test_penalties_without_history_raise_for_that_row():
    with pytest.raises(ValueError):
        sample(flat_logits(), [SamplingParams(1, presence_penalty=1.0)], [None], [None])


def test_logprobs_come_from_the_raw_logits_with_top_alternatives():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2] + [0.0] * (VOCAB - 3)]) + 1e-30)
    biased = SamplingParams(1, logit_bias=((2, 100.0),), logprobs=True, top_logprobs=2)
    (token,) = sample(logits, [biased], [None], [None])
    (entry,) = token_logprobs(logits, [biased], [token])
    assert token == 2  # the bias picked it, yet its logprob is the model's own
    assert entry.logprob == pytest.approx(math.log(0.2), abs=1e-5)
    assert [t for t, _ in entry.top] == [0, 1]
    assert entry.top[0][1] == pytest.approx(math.log(0.5), abs=1e-5)


def test_logprobs_only_for_rows_that_ask_and_never_minus_infinity():
    logits = torch.full((2, VOCAB), float("-inf"))
    logits[:, 0] = 0.0
    asks = SamplingParams(1, logprobs=True, top_logprobs=3)
    entries = token_logprobs(logits, [SamplingParams(1), asks], [0, 0])
    assert entries[0] is None
    assert entries[1].logprob == 0.0
    assert [lp for _, lp in entries[1].top] == [0.0, LOGPROB_FLOOR, LOGPROB_FLOOR]


def test_sample_edits_in_place_and_leaves_the_logits_raw():
    params = [SamplingParams(1, logit_bias=((3, 100.0),), repetition_penalty=1.5, frequency_penalty=1.0),
              SamplingParams(1, temperature=1.0, presence_penalty=2.0)]
    histories = [history(params[0], [3, 4], [3, 0]), history(params[1], [], [0])]
    torch.manual_seed(1)
    logits = torch.randn(2, VOCAB)
    raw = logits.clone()
    assert sample(logits, params, [None, torch.Generator().manual_seed(0)], histories)[0] == 3
    assert torch.equal(logits, raw)
