"""What every tool-call dialect shares: a parsed call, and the streaming parser's content and call
bookkeeping (each dialect's parser says only where its calls start and end)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from ..openai.chat_completion.protocol import DeltaFunctionCall, DeltaMessage, DeltaToolCall, tool_call_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParsedCall:
    name: str
    arguments: str  # a JSON object, as text


def arguments_text(arguments) -> str | None:
    """The arguments as a JSON object's text, or None when they are not an object."""
    if isinstance(arguments, str):  # some models write the object as a JSON string
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return json.dumps(arguments, ensure_ascii=False)


def parse_call(text: str, names: set[str]) -> ParsedCall | None:
    """`{"name": ..., "arguments": {...}}` (or `"parameters"`) naming one of `names`, else None."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("name") not in names:
        return None
    arguments = arguments_text(value.get("arguments", value.get("parameters", {})))
    return ParsedCall(value["name"], arguments) if arguments is not None else None


def history_arguments(arguments: str) -> str:
    """A history call's arguments as a JSON value in the prompt (kept verbatim when they are not JSON)."""
    try:
        return json.dumps(json.loads(arguments), ensure_ascii=False)
    except ValueError:
        return json.dumps(arguments, ensure_ascii=False)


class ToolStreamParser:
    """Turns the model's text, fed in pieces, into content deltas and tool-call deltas.

    Whitespace that only separates content from a call (the newline before `<tool_call>`) is
    dropped, so that a streamed reply reassembles to exactly the non-streamed one, which is
    this same parser fed once."""

    def __init__(self, names: set[str], parallel: bool) -> None:
        self.names = names
        self.parallel = parallel
        self.calls = 0
        self._pending_space = ""  # trailing whitespace of the content, held until more content comes
        self._after_call = False

    @property
    def called(self) -> bool:
        return self.calls > 0

    def feed(self, text: str) -> list[DeltaMessage]:
        raise NotImplementedError

    def finish(self) -> list[DeltaMessage]:
        raise NotImplementedError

    def _content(self, text: str, out: list[DeltaMessage]) -> None:
        text = self._pending_space + text
        if self._after_call:
            text = text.lstrip()  # the separator after a call
        body = text.rstrip()
        self._pending_space = text[len(body):]
        if body:
            out.append(DeltaMessage(content=body))
            self._after_call = False

    def _call(self, call: ParsedCall, out: list[DeltaMessage]) -> None:
        self._pending_space, self._after_call = "", True  # whitespace around a call only separates
        if self.calls and not self.parallel:
            log.info("dropped a second tool call (%s): parallel_tool_calls is false", call.name)
            return
        index = self._open_call(call.name, out)
        self._arguments(index, call.arguments, out)

    def _open_call(self, name: str, out: list[DeltaMessage]) -> int:
        """The first fragment of a call: its index, id, type and name (and empty arguments, as OpenAI sends)."""
        self._pending_space, self._after_call = "", True
        index = self.calls
        self.calls += 1
        out.append(DeltaMessage(tool_calls=[DeltaToolCall(index=index, id=tool_call_id(), type="function",
                                                          function=DeltaFunctionCall(name=name, arguments=""))]))
        return index

    @staticmethod
    def _arguments(index: int, text: str, out: list[DeltaMessage]) -> None:
        if text:
            out.append(DeltaMessage(tool_calls=[DeltaToolCall(index=index, function=DeltaFunctionCall(
                arguments=text))]))

    def _end(self, out: list[DeltaMessage]) -> list[DeltaMessage]:
        if not self.called and self._pending_space:
            out.append(DeltaMessage(content=self._pending_space))
        self._pending_space = ""
        return out


def partial_prefix(text: str, tag: str) -> int:
    """The length of the longest end of `text` that is the start of `tag` (to be held back)."""
    for n in range(min(len(text), len(tag) - 1), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0
