"""Per-sequence constraints on which tokens may come next (grammar-constrained decoding).

A request may carry one `Constraint`, created for it alone (it holds that sequence's parser
state). Before sampling, the engine asks every constrained row for its allowed tokens and sets
the others' logits to -inf (greedy rows too); after sampling it tells the constraint the chosen
token. A constraint that has terminated ends its sequence with finish reason "stop"; one that
fails ends only its own sequence. Rows without a constraint are never touched.
"""

from __future__ import annotations

import abc

import numpy as np
import torch


class ConstraintError(Exception):
    """The constraint cannot go on (rejected token, internal parser error): its sequence fails alone."""


class Constraint(abc.ABC):
    """The tokens one sequence may generate next. Used from the generation thread only."""

    @abc.abstractmethod
    def fill_bitmask(self, bitmask: torch.Tensor, index: int) -> None:
        """Write the allowed next tokens into row `index` of an int32 CPU bitmask of shape
        (rows, ceil(vocab / 32)): bit `t % 32` of word `t // 32` set means token t is allowed."""

    @abc.abstractmethod
    def accept(self, token: int) -> None:
        """Advance past the sampled token; raise ConstraintError when the constraint refuses it."""

    @abc.abstractmethod
    def is_terminated(self) -> bool:
        """True once nothing more may be generated (the grammar is complete and cannot go on)."""


def bitmask_words(vocab_size: int) -> int:
    return (vocab_size + 31) // 32


def apply_constraints(logits: torch.Tensor, constraints: list[Constraint | None]) -> dict[int, Exception]:
    """Mask, in place, each constrained row of `logits` (row i belongs to `constraints[i]`) to the tokens
    its constraint allows. Returns the rows whose constraint failed, with the exception: those rows are
    left unmasked, and the caller must not use a token sampled for them."""
    rows = [i for i, c in enumerate(constraints) if c is not None]
    failed: dict[int, Exception] = {}
    if not rows:
        return failed
    vocab = logits.shape[-1]
    bitmask = torch.zeros((len(rows), bitmask_words(vocab)), dtype=torch.int32)
    masked: list[int] = []
    for j, row in enumerate(rows):
        try:
            constraints[row].fill_bitmask(bitmask, j)
            masked.append(j)
        except Exception as exc:  # this row's constraint alone is broken
            failed[row] = exc
    if masked:
        # One unpack for all rows: bit b of word w is token 32*w + b (little-endian bit order).
        bits = np.unpackbits(bitmask.numpy().view(np.uint8), axis=1, bitorder="little")[:, :vocab]
        allowed = torch.from_numpy(bits[masked].astype(bool)).to(logits.device)
        index = torch.tensor([rows[j] for j in masked], device=logits.device)
        sub = logits.index_select(0, index).masked_fill_(~allowed, float("-inf"))
        logits.index_copy_(0, index, sub)
    return failed
