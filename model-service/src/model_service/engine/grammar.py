"""Grammar-constrained decoding with llguidance: JSON schemas compiled once per tokenizer, one
matcher per request.

llguidance was chosen over xgrammar and outlines-core (docs/structured-outputs.md): it names the
schema keywords it cannot enforce instead of ignoring them, and its per-token mask costs tens
of microseconds on this CPU for SmolLM2's 49k vocabulary.
"""

from __future__ import annotations

import collections
import json
import re
import threading
from typing import Any

import llguidance
import llguidance.hf
import torch

from .constraints import Constraint, ConstraintError

# Fixed separators and no free whitespace: a small model cannot pad forever with newlines, so a
# complete value always ends the grammar (and the sequence). Overrides beat a schema's "x-guidance".
JSON_OPTIONS: dict[str, Any] = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}

_UNIMPLEMENTED = re.compile(r"Unimplemented keys: \[(.*?)\]")


class SchemaError(ValueError):
    """The schema cannot be enforced: invalid, or it uses a keyword the grammar compiler lacks
    (`unsupported` then lists those keywords)."""

    def __init__(self, message: str, unsupported: list[str] | None = None) -> None:
        super().__init__(message)
        self.unsupported = unsupported or []


class GrammarConstraint(Constraint):
    """One request's position in its grammar."""

    def __init__(self, matcher: llguidance.LLMatcher) -> None:
        self.matcher = matcher

    def fill_bitmask(self, bitmask: torch.Tensor, index: int) -> None:
        row = bitmask[index]
        self.matcher.unsafe_compute_mask_ptr(row.data_ptr(), row.numel() * row.element_size())
        if self.matcher.is_error():
            raise ConstraintError(self.matcher.get_error())

    def accept(self, token: int) -> None:
        if not self.matcher.consume_token(token):
            raise ConstraintError(f"the grammar refused token {token}: {self.matcher.get_error()}")

    def is_terminated(self) -> bool:
        return self.matcher.is_stopped()


class GrammarCompiler:
    """Compiles JSON schemas for one tokenizer and keeps the last `cache_size` compiled grammars: a
    request gets a copy of the cached matcher (its own parser state), so a repeated schema costs no
    compile. Thread-safe."""

    def __init__(self, tokenizer, vocab_size: int | None = None, cache_size: int = 256) -> None:
        # Building the llguidance tokenizer takes ~0.4 s: once per model, never per request.
        self.tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)
        self.cache_size = cache_size
        self._cache: collections.OrderedDict[str, llguidance.LLMatcher] = collections.OrderedDict()
        self._lock = threading.Lock()

    def json_schema_constraint(self, schema: dict | bool) -> GrammarConstraint:
        """A constraint whose output is one JSON value valid against `schema`, then nothing more.
        Raises SchemaError when the schema is invalid or uses a keyword that cannot be enforced."""
        if not isinstance(schema, (dict, bool)):
            raise SchemaError(f"a JSON schema must be an object or a boolean, not {type(schema).__name__}")
        key = json.dumps(schema, sort_keys=True, separators=(",", ":"))
        with self._lock:
            template = self._cache.get(key)
            if template is not None:
                self._cache.move_to_end(key)
        if template is None:
            template = self._compile(schema)
            with self._lock:
                self._cache[key] = template
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return GrammarConstraint(template.deep_copy())

    def json_object_constraint(self) -> GrammarConstraint:
        """Any JSON object (OpenAI's `{"type": "json_object"}`)."""
        return self.json_schema_constraint({"type": "object"})

    def _compile(self, schema: dict | bool) -> llguidance.LLMatcher:
        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, overrides=JSON_OPTIONS)
        except (ValueError, TypeError) as exc:
            raise SchemaError(f"invalid JSON schema: {exc}") from None
        matcher = llguidance.LLMatcher(self.tokenizer, grammar, log_level=0)
        if matcher.is_error():
            error = matcher.get_error()
            unimplemented = _UNIMPLEMENTED.search(error)
            if unimplemented:
                keys = [k.strip().strip('"') for k in unimplemented.group(1).split(",") if k.strip()]
                raise SchemaError(f"unsupported JSON schema keyword(s): {', '.join(keys)}", unsupported=keys)
            raise SchemaError(f"invalid JSON schema: {_first_line(error)}")
        return matcher


def _first_line(error: str) -> str:
    return error.strip().splitlines()[0] if error.strip() else "rejected by the grammar compiler"
