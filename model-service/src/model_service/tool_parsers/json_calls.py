"""Calls written as bare JSON: those a grammar forces with `tool_choice` `required` or a named function,
whatever the model's dialect (see `ToolPlan.constraint_schema`), and a reply that opens with one,
bare or in a ```json fence, without its dialect's tags (`read_leading_call`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..openai.chat_completion.protocol import DeltaMessage
from .base import ParsedCall, ToolStreamParser, parse_call

FENCE_OPEN, FENCE_CLOSE = "```json", "```"


@dataclass(frozen=True)
class LeadingCall:
    call: ParsedCall | None  # None: the reply does not open with a call
    rest: str  # the text after the call (all of it when there is none)


def read_leading_call(text: str, names: set[str], final: bool) -> LeadingCall | None:
    """Whether the reply so far, `text`, opens with a call of one of `names` as a bare JSON object or in a
    ```json fence. None while it cannot tell (more text could make it one); `final`: the reply is over.
    The first member must be `"name"` with an offered tool, so JSON data or code is released early."""
    undecided = LeadingCall(None, text) if final else None
    body = text.lstrip()
    fenced = body.startswith(FENCE_OPEN)
    if fenced:
        body = body[len(FENCE_OPEN):].lstrip()
    elif body and FENCE_OPEN.startswith(body):
        return undecided
    if not body:
        return undecided
    opens = _opens_with_a_name(body, names)
    if opens is not True:
        return undecided if opens is None else LeadingCall(None, text)
    scanner = _JsonValueScanner()
    _, used = scanner.scan(body)
    if not scanner.done:
        return undecided
    call = parse_call(body[:used], names)
    after = body[used:]
    if call is None:
        return LeadingCall(None, text)
    if fenced:
        closing = after.lstrip()
        if closing.startswith(FENCE_CLOSE):
            after = closing[len(FENCE_CLOSE):]
        elif FENCE_CLOSE.startswith(closing):  # nothing, "`" or "``" so far
            if not final:
                return None
            after = ""  # the model stopped before closing the fence: the call is whole
        else:
            return LeadingCall(None, text)
    return LeadingCall(call, after)


def _opens_with_a_name(body: str, names: set[str]) -> bool | None:
    """Whether `body` opens `{"name": "<one of names>"`: True, False, or None while it could still."""
    if not body.startswith("{"):
        return False
    rest = body[1:].lstrip()
    if len(rest) < len('"name"'):
        return None if '"name"'.startswith(rest) else False
    if not rest.startswith('"name"'):
        return False
    rest = rest[len('"name"'):].lstrip()
    if not rest:
        return None
    if rest[0] != ":":
        return False
    rest = rest[1:].lstrip()
    if not rest:
        return None
    if rest[0] != '"':
        return False
    name, quote, _ = rest[1:].partition('"')
    if not quote:
        return None if any(n.startswith(name) for n in names) else False
    return name in names


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
