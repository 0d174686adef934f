"""The bare-JSON calls a grammar forces with `tool_choice` `required` or a named function, whatever
the model's dialect (see `ToolPlan.constraint_schema`)."""

from __future__ import annotations

import re

from ..openai.chat_completion.protocol import DeltaMessage
from .base import ToolStreamParser


class JsonCallsStreamParser(ToolStreamParser):
    """The bare-JSON calls a grammar forced (see `ToolPlan.constraint_schema`): each call's name as
    soon as it is written, then its arguments in the fragments they are generated in."""

    HEAD = re.compile(r'[\s\[\],}]*\{\s*"name"\s*:\s*"([A-Za-z0-9_-]{1,64})"\s*,\s*"arguments"\s*:\s*')

    def __init__(self, names: set[str], parallel: bool) -> None:
        super().__init__(names, parallel)
        self._buffer = ""
        self._scanner: _JsonValueScanner | None = None
        self._index = -1

    def feed(self, text: str) -> list[DeltaMessage]:
        self._buffer += text
        out: list[DeltaMessage] = []
        while self._buffer:
            if self._scanner is None:
                head = self.HEAD.match(self._buffer)
                if head is None:
                    break
                self._index = self._open_call(head.group(1), out)
                self._buffer = self._buffer[head.end():]
                self._scanner = _JsonValueScanner()
            else:
                skipped, used = self._scanner.scan(self._buffer)
                self._arguments(self._index, self._buffer[skipped:used], out)
                self._buffer = self._buffer[used:]
                if not self._scanner.done:
                    break
                self._scanner = None
        return out

    def finish(self) -> list[DeltaMessage]:
        self._buffer, self._scanner = "", None  # the closing brackets, or what a length cut left
        return []


class _JsonValueScanner:
    """Finds where one JSON object ends in text that arrives in pieces (strings and nesting tracked)."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False
        self.done = False

    def scan(self, text: str) -> tuple[int, int]:
        """(whitespace before the object, characters used) of `text`; `done` once the object is complete."""
        skipped = 0
        for i, ch in enumerate(text):
            if self.depth == 0 and ch.isspace():  # the separator's space can come with the next token
                skipped = i + 1
            elif self.in_string:
                if self.escaped:
                    self.escaped = False
                elif ch == "\\":
                    self.escaped = True
                elif ch == '"':
                    self.in_string = False
            elif ch == '"':
                self.in_string = True
            elif ch in "{[":
                self.depth += 1
            elif ch in "}]":
                self.depth -= 1
                if self.depth == 0:
                    self.done = True
                    return skipped, i + 1
        return skipped, len(text)
