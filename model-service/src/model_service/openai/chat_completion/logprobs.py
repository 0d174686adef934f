"""Engine logprobs (token ids and numbers) in OpenAI's shape: each token's text and exact bytes."""

from __future__ import annotations

import re

from transformers.convert_slow_tokenizer import bytes_to_unicode

from ...engine.sampling import TokenLogprob
from ..common.protocol import TopLogprob
from .protocol import ChatCompletionTokenLogprob, ChoiceLogprobs

_BYTE_OF_CHAR = {char: byte for byte, char in bytes_to_unicode().items()}
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")  # sentencepiece byte fallback (ChatGLM, Llama)
_PROBE = "Hello wörld, 你好 🙂"


class TokenTexts:
    """A token's text and bytes, cached. A byte-level BPE token may hold part of a UTF-8 character:
    its `bytes` are exact (they join to the output's bytes), its `token` text shows U+FFFD there."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self._special = set(getattr(tokenizer, "all_special_ids", ()) or ())
        self._byte_level = self._is_byte_level()
        self._cache: dict[int, tuple[str, list[int]]] = {}

    def _is_byte_level(self) -> bool:
        try:
            ids = self.tokenizer.encode(_PROBE, add_special_tokens=False)
            pieces = self.tokenizer.convert_ids_to_tokens(ids)
            return b"".join(bytes(_BYTE_OF_CHAR[c] for c in p) for p in pieces).decode().strip() == _PROBE
        except (KeyError, TypeError, UnicodeDecodeError):
            return False

    def get(self, token_id: int) -> tuple[str, list[int]]:
        cached = self._cache.get(token_id)
        if cached is None:
            raw = self._bytes(token_id)
            cached = self._cache[token_id] = (raw.decode("utf-8", errors="replace"), list(raw))
        return cached

    def _bytes(self, token_id: int) -> bytes:
        piece = self.tokenizer.convert_ids_to_tokens(token_id)
        if isinstance(piece, str) and token_id not in self._special:
            if self._byte_level and all(c in _BYTE_OF_CHAR for c in piece):
                return bytes(_BYTE_OF_CHAR[c] for c in piece)
            match = _BYTE_PIECE.fullmatch(piece)
            if match:
                return bytes([int(match.group(1), 16)])
        if token_id in self._special and isinstance(piece, str):
            return piece.encode("utf-8")
        return self.tokenizer.decode([token_id]).encode("utf-8")

    def content(self, logprobs: list[TokenLogprob]) -> ChoiceLogprobs:
        entries = []
        for entry in logprobs:
            token, raw = self.get(entry.token_id)
            top = []
            for token_id, logprob in entry.top:
                top_token, top_raw = self.get(token_id)
                top.append(TopLogprob(token=top_token, logprob=logprob, bytes=top_raw))
            entries.append(ChatCompletionTokenLogprob(token=token, logprob=entry.logprob, bytes=raw, top_logprobs=top))
        return ChoiceLogprobs(content=entries)
