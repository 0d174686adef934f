"""Per-request sampling over one batch of logits, numerically safe for every accepted value."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# A temperature below this is greedy: dividing logits by it would overflow float32 (1e-45 gives
# inf, then NaN probabilities), and the distribution is one-hot long before that anyway.
GREEDY_TEMPERATURE_EPSILON = 1e-5


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 0.0  # below GREEDY_TEMPERATURE_EPSILON means greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_TEMPERATURE_EPSILON


def sample(logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator | None]) -> list[int]:
    """Pick one token per row. Greedy rows share one argmax; sampled rows use their own generator.

    A sampled row whose probabilities are not a usable distribution (NaN or inf logits from
    the model) falls back to its argmax instead of raising."""
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
