"""The shortest way out of a JSON grammar, so that a constrained answer always finishes inside its
`max_tokens` (no server we know of does this: vLLM, SGLang and llama.cpp let the budget cut the document).

`ClosingPlanner.path` walks a copy of the request's matcher from where it is to a complete document: the
tokens the grammar forces, else the first allowed token of a fixed preference (close the string, then the
innermost container, then a separator, then the smallest value: `""`, `0`, `[]`, `{}`, `null`...), else the
longest allowed token (a required key, a string's minimum length). The result is valid by construction
(every token passed the matcher) and short, not provably shortest.

`GrammarConstraint` uses it near the end of the budget in two ways: once the way out is as long as the
tokens left, only its next token is allowed; before that, an allowed token that would make the way out
longer than the tokens left (opening an item, a key, a nested object) is dropped from the mask. Only
tokens that can open something are looked at (`risky`); the others (string content, digits) grow the way
out by at most one token, which the slack of two that closing keeps covers.
"""

from __future__ import annotations

import numpy as np
import torch

# In preference order; each also matches the same text after leading spaces (' "', ' []', ...).
_PREFERRED = ('"}]', '"]}', '"}}', '"]]', '"}', '"]', ']}', '}]', '}}', ']]', '"', '}', ']', ',',
              '""', '0', '1', '[]', '{}', 'null', 'false', 'true', '[', '{', '')
# A value token the planner picks this many times running is a loop (0.000... where the schema wants > 0):
# it is passed over for the next choice.
_REPEATS = 3
# how many of the longest allowed tokens the planner tries for one that lets the value end next
_COMPLETING_CANDIDATES = 64
# an allowed set this small is looked ahead token by token: an enum's or a key's next characters can
# commit to a long value, which string content in general cannot
SMALL_SET = 64
_EMPTY_STRINGS = ('""',)
_OPENERS_OUTSIDE = set('"{[,:')
_OPENERS_INSIDE = set('"\\')


class JsonLexState:
    """Where the text so far is, lexically: inside a string (and whether that string is an object's key,
    whose content decides what follows), or outside, with the stack of open containers."""

    __slots__ = ("in_string", "escaped", "in_key", "stack", "expect_key", "strings")

    def __init__(self) -> None:
        self.in_string = self.escaped = self.in_key = self.expect_key = False
        self.stack: list[str] = []
        self.strings = 0  # strings opened so far: names the current one

    def copy(self) -> "JsonLexState":
        other = JsonLexState()
        other.in_string, other.escaped, other.in_key = self.in_string, self.escaped, self.in_key
        other.stack, other.expect_key, other.strings = list(self.stack), self.expect_key, self.strings
        return other

    def feed(self, text: str) -> None:
        for ch in text:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif ch == "\\":
                    self.escaped = True
                elif ch == '"':
                    self.in_string = self.in_key = False
            elif ch == '"':
                self.in_string, self.strings = True, self.strings + 1
                self.in_key, self.expect_key = self.expect_key, False
            elif ch in "{[":
                self.stack.append(ch)
                self.expect_key = ch == "{"
            elif ch in "}]":
                if self.stack:
                    self.stack.pop()
                self.expect_key = False
            elif ch == ",":
                self.expect_key = bool(self.stack) and self.stack[-1] == "{"
            elif ch == ":":
                self.expect_key = False

    def after_string(self, text: str) -> str | None:
        """What of `text` comes after the current string closes (None if it does not close in `text`)."""
        escaped = self.escaped
        for i, ch in enumerate(text):
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                return text[i + 1:]
        return None


class ClosingPlanner:
    """Built once per tokenizer (with the grammar compiler): the preferred closing tokens and every token's text."""

    def __init__(self, tokenizer, vocab_size: int | None = None, limit: int = 256) -> None:
        size = len(tokenizer)
        self.texts = [tokenizer.decode([i]) for i in range(size)]
        self.words = ((vocab_size or size) + 31) // 32
        self.size = size
        self.limit = limit
        self.eos = tokenizer.eos_token_id
        rank = {text: i for i, text in enumerate(_PREFERRED)}
        ranked = sorted((rank[t.lstrip(" ")], len(t), i) for i, t in enumerate(self.texts)
                        if t.lstrip(" ") in rank and (t.strip() != "" or t == " "))
        closers = [i for _, _, i in ranked]
        # tokens that only close (a quote, brackets): repeating them is progress, not a loop
        self.closers = {i for i in closers if set(self.texts[i].strip()) <= set('"]}')}
        opens_string = [i for i in closers if self.texts[i].lstrip(" ").startswith('"')]
        # inside a string: what starts with its closing quote; outside: never a token that opens a string with
        # something in it (the empty string is a value, '"]' at a value would be a string holding "]")
        self.in_string = opens_string
        self.outside = [i for i in closers if i not in set(opens_string)
                        or self.texts[i].lstrip(" ") in _EMPTY_STRINGS]
        self.risky_inside = np.array([i for i, t in enumerate(self.texts) if _OPENERS_INSIDE & set(t)], np.int64)
        self.risky_outside = np.array([i for i, t in enumerate(self.texts) if _OPENERS_OUTSIDE & set(t)], np.int64)

    def token_text(self, token: int) -> str:
        return self.texts[token] if 0 <= token < self.size else ""

    def path(self, matcher, lex: JsonLexState, limit: int | None = None) -> list[int] | None:
        """Tokens from `matcher`'s state (left unchanged) to a finished document (ending with EOS where the
        grammar needs one); None when none was found within `limit` tokens."""
        limit = self.limit if limit is None else limit
        probe, lex, path, picked = matcher.deep_copy(), lex.copy(), [], []
        while not probe.is_stopped():
            if len(path) >= limit:
                return None
            if probe.is_accepting():
                return path + [self.eos] if self.eos is not None else path
            forced = probe.compute_ff_tokens()
            if forced:
                steps = forced
            else:
                looping = picked[-1] if len(picked) >= _REPEATS and len(set(picked[-_REPEATS:])) == 1 else None
                steps = [self._next(probe, lex, None if looping in self.closers else looping)]
                picked.append(steps[0])
            if steps[0] is None:
                return None
            for token in steps:
                if not probe.consume_token(token):
                    return None
                path.append(token)
                lex.feed(self.token_text(token))
        return path

    def _next(self, probe, lex: JsonLexState, avoid: int | None = None) -> int | None:
        for token in self.in_string if lex.in_string else self.outside:
            if token != avoid and probe.validate_tokens([token]) == 1:
                return token
        bitmask = torch.zeros((1, self.words), dtype=torch.int32)
        probe.unsafe_compute_mask_ptr(bitmask[0].data_ptr(), bitmask[0].numel() * bitmask[0].element_size())
        allowed = [t for t in np.flatnonzero(allowed_bits(bitmask[0], self.size)) if t != avoid]
        if not allowed:
            return None
        # Nothing preferred fits (a required key, an enum value, a string's minimum length): the longest token
        # after which the value can end at once ("a" of the enum ["a", "a long option"]), else the longest.
        longest = sorted(allowed, key=lambda token: (-len(self.texts[token]), token))
        for token in longest[:_COMPLETING_CANDIDATES]:
            after = lex.copy()
            after.feed(self.texts[token])
            enders = self.in_string[:4] if after.in_string else self.outside[:10]
            if any(probe.validate_tokens([int(token), ender]) == 2 for ender in enders):
                return int(token)
        return int(longest[0])

    def risky(self, allowed_bits: np.ndarray, lex: JsonLexState) -> np.ndarray:
        """The allowed tokens that could lengthen the way out by more than a token: all of a small allowed
        set (an enum, a key, a number's digits), else those that can open something."""
        allowed = np.flatnonzero(allowed_bits)
        if allowed.size <= SMALL_SET:
            return allowed
        candidates = self.risky_inside if lex.in_string else self.risky_outside
        return candidates[allowed_bits[candidates] == 1]

    def group(self, token: int, lex: JsonLexState):
        """Tokens of one group leave the grammar in the same state, so one of them stands for all: inside a
        value string, what follows the closing quote is all that counts; elsewhere, the whole text."""
        text = self.texts[token]
        if lex.in_string and not lex.in_key:
            rest = lex.after_string(text)
            if rest is not None:
                return lex.strings, "closes", rest
            return lex.strings, lex.escaped, text
        return None, text

    def length_after(self, matcher, lex: JsonLexState, token: int, limit: int) -> int:
        """1 + the way out's length after `token` (more than `limit` when it does not fit)."""
        probe, lex = matcher.deep_copy(), lex.copy()
        if not probe.consume_token(token):
            return limit + 1
        lex.feed(self.token_text(token))
        path = self.path(probe, lex, limit=limit)
        return limit + 1 if path is None else 1 + len(path)


def allowed_bits(row: torch.Tensor, size: int) -> np.ndarray:
    """One mask row (int32 words) as one 0/1 byte per token."""
    return np.unpackbits(row.numpy().view(np.uint8), bitorder="little")[:size]


def _set_word(row: torch.Tensor, word: int, value: int) -> None:
    row[word] = value - (1 << 32) if value >= 1 << 31 else value  # an unsigned 32-bit value as the int32 word


def clear_bit(row: torch.Tensor, token: int) -> None:
    word, bit = divmod(token, 32)
    _set_word(row, word, int(row[word]) & ~(1 << bit) & 0xFFFFFFFF)


def only_bit(row: torch.Tensor, token: int) -> None:
    """`token` is the one allowed."""
    row.zero_()
    _set_word(row, token // 32, 1 << (token % 32))
