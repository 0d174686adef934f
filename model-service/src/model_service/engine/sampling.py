"""Per-request sampling over one batch of logits, numerically safe for every accepted value.

Order per row, as vLLM's sampler does: raw logprobs (when asked) come from the model's own
logits; then logit bias, then penalties (repetition, frequency, presence), then greedy pick or
temperature and top_p and a draw. A row without controls skips the bias/penalty work entirely.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# A temperature below this is greedy: dividing logits by it would overflow float32 (1e-45 gives
# inf, then NaN probabilities), and the distribution is one-hot long before that anyway.
GREEDY_TEMPERATURE_EPSILON = 1e-5
# JSON has no -inf: OpenAI and vLLM report an impossible token's logprob as this.
LOGPROB_FLOOR = -9999.0


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 0.0  # below GREEDY_TEMPERATURE_EPSILON means greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    frequency_penalty: float = 0.0  # subtracted per earlier occurrence in the output
    presence_penalty: float = 0.0  # subtracted once if the token occurs in the output
    repetition_penalty: float = 1.0  # vLLM's: divides (or multiplies) logits of tokens seen in prompt or output
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, added to its logit)
    logprobs: bool = False
    top_logprobs: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_TEMPERATURE_EPSILON

    @property
    def has_penalties(self) -> bool:
        return self.frequency_penalty != 0.0 or self.presence_penalty != 0.0 or self.repetition_penalty != 1.0

    @property
    def has_controls(self) -> bool:
        """True when the logits are changed before the pick (bias or penalties)."""
        return self.has_penalties or bool(self.logit_bias)


class PenaltyHistory:
    """What the penalties of one sequence need to know: how often each token occurred in its output
    (frequency, presence) and which tokens occurred in prompt or output (repetition). One dense row
    per sequence, updated in O(1) per token, so a step stacks rows instead of recounting."""

    def __init__(self, params: SamplingParams, prompt_ids: list[int], vocab_size: int,
                 device: torch.device | str = "cpu") -> None:
        self.output_counts = torch.zeros(vocab_size, dtype=torch.float32, device=device)
        self.seen = torch.zeros(vocab_size, dtype=torch.bool, device=device)
        if params.repetition_penalty != 1.0 and prompt_ids:
            ids = torch.tensor([i for i in prompt_ids if 0 <= i < vocab_size], dtype=torch.long, device=device)
            self.seen[ids] = True

    def observe(self, token: int) -> None:
        if 0 <= token < self.output_counts.shape[0]:
            self.output_counts[token] += 1.0
            self.seen[token] = True


@dataclass(frozen=True)
class TokenLogprob:
    """The logprob of one generated token and the most likely alternatives, from the raw logits."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


def apply_controls(logits: torch.Tensor, params: list[SamplingParams],
                   histories: list[PenaltyHistory | None] | None = None) -> torch.Tensor:
    """Logits with each row's bias and penalties applied. Returns `logits` itself when no row has
    controls; otherwise a copy (the caller's raw logits stay as they were, e.g. for logprobs)."""
    rows = [i for i, p in enumerate(params) if p.has_controls]
    if not rows:
        return logits
    index = torch.tensor(rows, device=logits.device)
    sub = logits.index_select(0, index).float()
    for j, row in enumerate(rows):  # a bias names a few tokens: a scatter per row
        bias = params[row].logit_bias
        if bias:
            ids = torch.tensor([t for t, _ in bias], dtype=torch.long, device=logits.device)
            sub[j].index_add_(0, ids, torch.tensor([b for _, b in bias], dtype=sub.dtype, device=logits.device))
    penalised = [j for j, row in enumerate(rows) if params[row].has_penalties]
    if penalised:
        sub = _apply_penalties(sub, penalised, [params[rows[j]] for j in penalised],
                               [histories[rows[j]] if histories else None for j in penalised])
    return logits.index_copy(0, index, sub.to(logits.dtype))


def _apply_penalties(sub: torch.Tensor, penalised: list[int], params: list[SamplingParams],
                     histories: list[PenaltyHistory | None]) -> torch.Tensor:
    """Penalties for the rows `penalised` of `sub`, vectorised over those rows."""
    if any(h is None for h in histories):
        raise ValueError("a request with penalties has no token history")
    device = sub.device
    index = torch.tensor(penalised, device=device)
    part = sub.index_select(0, index)
    counts = torch.stack([h.output_counts for h in histories])
    seen = torch.stack([h.seen for h in histories])
    rep = torch.tensor([p.repetition_penalty for p in params], device=device)[:, None]
    part = torch.where(seen & (part > 0), part / rep, torch.where(seen, part * rep, part))
    freq = torch.tensor([p.frequency_penalty for p in params], device=device)[:, None]
    pres = torch.tensor([p.presence_penalty for p in params], device=device)[:, None]
    part = part - freq * counts - pres * (counts > 0).float()
    return sub.index_copy(0, index, part)


def sample(logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator | None],
           histories: list[PenaltyHistory | None] | None = None) -> list[int]:
    """Pick one token per row. Greedy rows share one argmax; sampled rows use their own generator.
    Bias and penalties change only the rows that ask for them (`histories[i]` holds row i's tokens).

    A sampled row whose probabilities are not a usable distribution (NaN or inf logits from
    the model) falls back to its argmax instead of raising."""
    logits = apply_controls(logits, params, histories)
    chosen = logits.argmax(dim=-1)
    sampled_rows = [i for i, p in enumerate(params) if not p.greedy]
    if sampled_rows:
        index = torch.tensor(sampled_rows, device=logits.device)
        temps = torch.tensor([params[i].temperature for i in sampled_rows], device=logits.device)
        probs = torch.softmax(logits.index_select(0, index).float() / temps[:, None], dim=-1)
        for j, row in enumerate(sampled_rows):
            p = probs[j]
            top_p = params[row].top_p
            if top_p < 1.0:
                sorted_p, order = torch.sort(p, descending=True)
                keep = torch.cumsum(sorted_p, dim=0) - sorted_p < top_p
                keep[0] = True  # the top token always stays, even when top_p underflows to 0 in float32
                p = torch.zeros_like(p).scatter_(0, order[keep], sorted_p[keep])
            if bool(torch.isfinite(p).all()) and float(p.sum()) > 0.0:
                chosen[row] = torch.multinomial(p, 1, generator=generators[row])[0]
    return chosen.tolist()


def token_logprobs(logits: torch.Tensor, params: list[SamplingParams],
                   tokens: list[int | Exception]) -> list[TokenLogprob | None]:
    """Logprobs of the chosen tokens for the rows that ask for them, from the raw logits (vLLM's
    default `logprobs_mode=raw_logprobs`: before bias, penalties, temperature and top_p)."""
    result: list[TokenLogprob | None] = [None] * len(params)
    rows = [i for i, p in enumerate(params) if p.logprobs and isinstance(tokens[i], int)]
    if not rows:
        return result
    index = torch.tensor(rows, device=logits.device)
    logprobs = torch.log_softmax(logits.index_select(0, index).float(), dim=-1)
    chosen = logprobs.gather(1, torch.tensor([[tokens[i]] for i in rows], device=logits.device))[:, 0].tolist()
    k = max(params[i].top_logprobs for i in rows)
    top_values, top_ids = (logprobs.topk(k, dim=-1) if k else (None, None))
    for j, row in enumerate(rows):
        n = params[row].top_logprobs
        top = ()
        if n:
            top = tuple(zip(top_ids[j, :n].tolist(), map(_finite, top_values[j, :n].tolist())))
        result[row] = TokenLogprob(tokens[row], _finite(chosen[j]), top)
    return result


def _finite(logprob: float) -> float:
    return logprob if logprob > LOGPROB_FLOOR else LOGPROB_FLOOR  # also maps NaN to the floor
