"""Hermes (Qwen, SmolLM2 and every model but the ChatGLM family): the tools as JSON lines inside
`<tools></tools>` in a system block; calls as `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`;
results as a user turn of `<tool_response>...</tool_response>` blocks. A reply that opens with the call
as bare JSON or in a ```json fence, without the tags (Qwen2.5-Coder does that with tool_choice auto),
counts too (`json_calls.read_leading_call`)."""

from __future__ import annotations

import json

from ..openai.chat_completion.protocol import (
    ChatCompletionMessageToolCall,
    ChatMessage,
    DeltaMessage,
    FunctionDefinition,
)
from .base import ParsedCall, ToolStreamParser, history_arguments, parse_call, partial_prefix
from .json_calls import read_leading_call
from .registry import register


@register
class HermesDialect:
    name = "hermes"
    model_types = ()  # the default dialect: every model no other dialect claims
    START, END = "<tool_call>", "</tool_call>"

    def system_prompt(self, functions: list[FunctionDefinition], instruction: str) -> str:
        lines = "\n".join(json.dumps({"type": "function", "function": f.model_dump(exclude_none=True)},
                                     ensure_ascii=False) for f in functions)
        return ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                "You are provided with function signatures within <tools></tools> XML tags:\n"
                f"<tools>\n{lines}\n</tools>\n\n"
                "For each function call, return a json object with function name and arguments within "
                "<tool_call></tool_call> XML tags:\n<tool_call>\n"
                '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>' + instruction)

    def render_calls(self, content: str, calls: list[ChatCompletionMessageToolCall]) -> str:
        blocks = [f'{self.START}\n{{"name": {json.dumps(c.function.name, ensure_ascii=False)}, '
                  f'"arguments": {history_arguments(c.function.arguments)}}}\n{self.END}' for c in calls]
        return "\n".join(([content] if content else []) + blocks)

    def render_results(self, results: list[ChatMessage]) -> dict:
        return {"role": "user",
                "content": "\n".join(f"<tool_response>\n{m.text()}\n</tool_response>" for m in results)}

    def parser(self, names: set[str], parallel: bool) -> ToolStreamParser:
        return HermesStreamParser(names, parallel)


class HermesStreamParser(ToolStreamParser):
    START, END = HermesDialect.START, HermesDialect.END

    def __init__(self, names: set[str], parallel: bool) -> None:
        super().__init__(names, parallel)
        self._buffer = ""
        self._in_call = False
        self._lead: str | None = "" if names else None  # the reply's start, until it is known to be no call

    def feed(self, text: str) -> list[DeltaMessage]:
        out: list[DeltaMessage] = []
        if self._lead is not None:
            text = self._read_lead(text, out, final=False)
            if text is None:
                return out
        self._buffer += text
        while True:
            if not self._in_call:
                start = self._buffer.find(self.START)
                if start < 0:
                    keep = partial_prefix(self._buffer, self.START)
                    self._content(self._buffer[: len(self._buffer) - keep], out)
                    self._buffer = self._buffer[len(self._buffer) - keep:]
                    return out
                self._content(self._buffer[:start], out)
                self._buffer = self._buffer[start + len(self.START):]
                self._in_call = True
            else:
                end = self._buffer.find(self.END)
                if end < 0:
                    return out
                body, self._buffer = self._buffer[:end], self._buffer[end + len(self.END):]
                self._in_call = False
                self._block(body, out, closed=True)

    def _read_lead(self, text: str, out: list[DeltaMessage], final: bool) -> str | None:
        """The text after the reply's leading call (all of it when it opens with none); None: undecided."""
        self._lead += text
        lead = read_leading_call(self._lead, self.names, final)
        if lead is None:
            return None
        self._lead = None
        if lead.call is not None:
            self._call(lead.call, out)
        return lead.rest

    def finish(self) -> list[DeltaMessage]:
        out: list[DeltaMessage] = []
        if self._lead is not None:
            out += self.feed(self._read_lead("", out, final=True))
        if self._in_call:  # the model stopped before `</tool_call>`: the call counts if its JSON is whole
            self._block(self._buffer, out, closed=False)
        else:
            self._content(self._buffer, out)
        self._buffer, self._in_call = "", False
        return self._end(out)

    def _block(self, body: str, out: list[DeltaMessage], closed: bool) -> None:
        call = self._parse(body)
        if call is None:
            self._content(self.START + body + (self.END if closed else ""), out)
            return
        self._call(call, out)

    def _parse(self, body: str) -> ParsedCall | None:
        return parse_call(body, self.names)
