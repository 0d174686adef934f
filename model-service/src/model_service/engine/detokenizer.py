"""Turn generated token ids into text deltas without splitting characters, and apply stop strings."""

from __future__ import annotations

REPLACEMENT_CHAR = "\ufffd"


class IncrementalDetokenizer:
    """Decodes a growing token list into text deltas.

    A byte-level BPE token can end in the middle of a UTF-8 character (Chinese, emoji); its
    decoded text then ends in U+FFFD. Such text is held back until the next token completes
    the character, so a client never sees a broken character. The window decoded each step
    starts a few tokens back (`prefix_offset`) so tokenizers that merge leading spaces decode
    the same text as a full decode would.
    """

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        decode = self.tokenizer.decode
        prefix = decode(self.ids[self.prefix_offset : self.read_offset], skip_special_tokens=True)
        full = decode(self.ids[self.prefix_offset :], skip_special_tokens=True)
        if len(full) > len(prefix) and not full.endswith(REPLACEMENT_CHAR):
            self.prefix_offset = self.read_offset
            self.read_offset = len(self.ids)
            return full[len(prefix) :]
        return ""


class StopStringMatcher:
    """Accumulates output text and releases only what cannot be the start of a stop string."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.holdback = max((len(s) for s in self.stops), default=1) - 1
        self.text = ""
        self.released = 0

    def feed(self, delta: str) -> tuple[str, bool]:
        """Add text; return (text safe to send now, whether a stop string was hit)."""
        if not delta:
            return "", False
        search_from = max(0, len(self.text) - self.holdback)
        self.text += delta
        if self.stops:
            hits = [i for i in (self.text.find(s, search_from) for s in self.stops) if i >= 0]
            if hits:
                self.text = self.text[: min(hits)]
                return self.flush(), True
        safe_end = len(self.text) - self.holdback
        if safe_end <= self.released:
            return "", False
        out = self.text[self.released : safe_end]
        self.released = safe_end
        return out, False

    def flush(self) -> str:
        out = self.text[self.released :]
        self.released = len(self.text)
        return out
