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
from .json_closing import ClosingPlanner, JsonLexState, allowed_bits, clear_bit, only_bit

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
    """One request's position in its grammar. With a budget (`within`), it also finishes the document inside
    it (engine/json_closing.py): near the end, tokens that would leave no room to close are masked out, and
    once the shortest way out fills the tokens left, only its next token is allowed."""

    # the budget is looked at only this close to its end (a look costs about a millisecond)
    CLOSING_WINDOW = 96
    # string content and digits of a large allowed set can lengthen the way out by one token
    # (ClosingPlanner.risky leaves them unchecked): closing starts with this much to spare
    SLACK = 1

    def __init__(self, matcher: llguidance.LLMatcher, planner: ClosingPlanner | None = None) -> None:
        self.matcher = matcher
        self.planner = planner
        self.budget: int | None = None
        self.generated = 0
        self.lex = JsonLexState()
        self.closing = False  # set once the answer is being closed (for logs and tests)
        self._plan: list[int] = []  # the rest of the way out, once closing (the planner is deterministic)
        self._lengths: dict = {}  # ClosingPlanner.group -> length of the way out after it, for this step
        self.window = self.CLOSING_WINDOW
        self.smallest: int | None = None  # tokens in the smallest whole document (set by `within`)

    def within(self, max_tokens: int) -> "GrammarConstraint":
        """Finish the document within `max_tokens` generated tokens (EOS included)."""
        self.budget = max_tokens
        path = self.shortest_completion()
        if path is not None:  # a schema whose smallest document is long needs a longer look ahead
            self.smallest = len(path)
            self.window = max(self.CLOSING_WINDOW, 2 * self.smallest + 16)
        return self

    def shortest_completion(self) -> list[int] | None:
        """The planner's way out from here (None without a planner, or when it found none)."""
        return self.planner.path(self.matcher, self.lex) if self.planner is not None else None

    def fill_bitmask(self, bitmask: torch.Tensor, index: int) -> None:
        row = bitmask[index]
        left = None if self.budget is None or self.planner is None else self.budget - self.generated
        near_end = left is not None and left <= self.window
        path = None
        if near_end and not self._plan:
            path = self.shortest_completion()
            near_end = bool(path)  # no way out found (not expected): decode as without a budget
            if near_end and len(path) + self.SLACK >= left:
                self.closing, self._plan = True, path
        if self._plan:
            only_bit(row, self._plan[0])
            return
        self.matcher.unsafe_compute_mask_ptr(row.data_ptr(), row.numel() * row.element_size())
        if self.matcher.is_error():
            raise ConstraintError(self.matcher.get_error())
        if near_end:
            self._drop_overlong(row, left, keep=path[0])

    def _drop_overlong(self, row: torch.Tensor, left: int, keep: int) -> None:
        """Masks out each allowed token after which the way out would not fit in the tokens left; never `keep`,
        the way out's next token (it fits by construction), so the mask is never empty."""
        planner = self.planner
        for token in planner.risky(allowed_bits(row, planner.size), self.lex):
            if token == keep:
                continue
            group = planner.group(int(token), self.lex)
            length = self._lengths.get(group)
            if length is None:
                length = self._lengths[group] = planner.length_after(self.matcher, self.lex, int(token), left)
            if length > left:
                clear_bit(row, int(token))

    def accept(self, token: int) -> None:
        if not self.matcher.consume_token(token):
            raise ConstraintError(f"the grammar refused token {token}: {self.matcher.get_error()}")
        self.generated += 1
        if self._plan:
            self._plan = self._plan[1:] if token == self._plan[0] else []
        if self.planner is not None:
            string = self.lex.strings if self.lex.in_string and not self.lex.in_key else None
            self.lex.feed(self.planner.token_text(token))
            # within one value string, what follows its close does not change: those lengths still hold (what
            # follows more content, an enum's next letters, does change)
            if string is None or not self.lex.in_string or self.lex.strings != string:
                self._lengths = {}
            else:
                self._lengths = {g: n for g, n in self._lengths.items() if g[0] == string and g[1] == "closes"}

    def is_terminated(self) -> bool:
        return self.matcher.is_stopped()


class GrammarCompiler:
    """Compiles JSON schemas for one tokenizer and keeps the last `cache_size` compiled grammars: a
    request gets a copy of the cached matcher (its own parser state), so a repeated schema costs no
    compile. Thread-safe."""

    def __init__(self, tokenizer, vocab_size: int | None = None, cache_size: int = 256) -> None:
        # Building the llguidance tokenizer takes ~0.4 s: once per model, never per request.
        self.tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)
        self.planner = ClosingPlanner(tokenizer, vocab_size)
        self.cache_size = cache_size
        self._cache: collections.OrderedDict[str, llguidance.LLMatcher] = collections.OrderedDict()
        self._lock = threading.Lock()

    def json_schema_constraint(self, schema: dict | bool, max_array_items: int | None = None) -> GrammarConstraint:
        """A constraint whose output is one JSON value valid against `schema`, then nothing more; with
        `max_array_items`, arrays the schema leaves unbounded hold at most that many items (cap_arrays).
        Raises SchemaError when the schema is invalid or uses a keyword that cannot be enforced."""
        if not isinstance(schema, (dict, bool)):
            raise SchemaError(f"a JSON schema must be an object or a boolean, not {type(schema).__name__}")
        if max_array_items is not None:
            schema = cap_arrays(schema, max_array_items)
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
        return GrammarConstraint(template.deep_copy(), self.planner)

    def json_object_constraint(self) -> GrammarConstraint:
        """Any JSON object (OpenAI's `{"type": "json_object"}`)."""
        return self.json_schema_constraint({"type": "object"})

    def _compile(self, schema: dict | bool) -> llguidance.LLMatcher:
        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, overrides=JSON_OPTIONS)
        except Exception as exc:  # whatever the library raises for a schema is the schema's fault: 400
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


# keywords whose values are data, not schemas; and those whose values map names to schemas
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})


def cap_arrays(schema, limit: int):
    """A copy of `schema` in which every array without `maxItems` gets `maxItems: limit` (or its `minItems`, if
    more): a small model that repeats list items then ends the list instead of looping until max_tokens."""
    if isinstance(schema, list):
        return [cap_arrays(item, limit) for item in schema]
    if not isinstance(schema, dict):
        return schema
    capped = {}
    for key, value in schema.items():
        if key in _DATA_KEYWORDS:
            capped[key] = value
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            capped[key] = {name: cap_arrays(sub, limit) for name, sub in value.items()}
        else:
            capped[key] = cap_arrays(value, limit)
    kind = schema.get("type")
    is_array = kind == "array" or (isinstance(kind, list) and "array" in kind) or (
        kind is None and ("items" in schema or "prefixItems" in schema))
    if is_array and "maxItems" not in schema:
        least = schema.get("minItems")
        capped["maxItems"] = max(limit, least) if isinstance(least, int) and not isinstance(least, bool) else limit
    return capped


def _first_line(error: str) -> str:
    return error.strip().splitlines()[0] if error.strip() else "rejected by the grammar compiler"
