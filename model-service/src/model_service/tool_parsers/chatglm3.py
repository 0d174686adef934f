"""ChatGLM3: the tools as indented JSON after the system text, as its own demo does; calls as a line with
the function name, then ```python tool_call(key=value, ...)``` (parsed as literals, never run); results
as `observation` turns."""

from __future__ import annotations

import ast
import json
import re

from ..openai.chat_completion.protocol import (
    ChatCompletionMessageToolCall,
    ChatMessage,
    DeltaMessage,
    FunctionDefinition,
)
from .base import ParsedCall, ToolStreamParser
from .registry import register


@register
class ChatGLM3Dialect:
    name = "chatglm3"
    model_types = ("chatglm",)  # transformers' model_type of ChatGLM2/3 (and GLM-4's remote code)

    def system_prompt(self, functions: list[FunctionDefinition], instruction: str) -> str:
        tools = [f.model_dump(exclude_none=True) for f in functions]
        return ("Answer the following questions as best as you can. You have access to the following tools:\n"
                + json.dumps(tools, indent=4, ensure_ascii=False) + instruction)

    def render_calls(self, content: str, calls: list[ChatCompletionMessageToolCall]) -> str:
        blocks = []
        for c in calls:
            try:
                args = json.loads(c.function.arguments)
            except ValueError:
                args = {}
            kwargs = ", ".join(f"{k}={v!r}" for k, v in args.items()) if isinstance(args, dict) else ""
            blocks.append(f"{c.function.name}\n```python\ntool_call({kwargs})\n```")
        return "\n".join(([content] if content else []) + blocks)

    def render_results(self, results: list[ChatMessage]) -> dict:
        return {"role": "observation", "content": "\n".join(m.text() for m in results)}

    def parser(self, names: set[str], parallel: bool) -> ToolStreamParser:
        return ChatGLM3StreamParser(names, parallel)


class ChatGLM3StreamParser(ToolStreamParser):
    """ChatGLM3 answers a turn with a metadata line: empty for text, a function name for a call,
    followed by ```python tool_call(key=value)``` (its own demo `eval`s that; here it is parsed
    as literals only). The first line decides: text streams on, a call is read at the end."""

    CALL = re.compile(r"^\s*([A-Za-z0-9_-]{1,64})[ \t]*\n\s*```(?:python)?\s*\n(.*?)\n?\s*```\s*$", re.DOTALL)

    def __init__(self, names: set[str], parallel: bool) -> None:
        super().__init__(names, parallel)
        self._head = ""
        self._decided: str | None = None  # "text" | "call"

    def feed(self, text: str) -> list[DeltaMessage]:
        out: list[DeltaMessage] = []
        if self._decided == "text":
            self._content(text, out)
            return out
        self._head += text
        if self._decided is None:
            stripped = self._head.lstrip()
            if "\n" not in stripped:
                return out  # the first line is not complete yet
            first = stripped.split("\n", 1)[0].strip()
            self._decided = "call" if first in self.names else "text"
            if self._decided == "text":
                self._content(self._head, out)
                self._head = ""
        return out

    def finish(self) -> list[DeltaMessage]:
        out: list[DeltaMessage] = []
        if self._head:
            calls = self._parse(self._head)
            if calls:
                for call in calls:
                    self._call(call, out)
            else:
                self._content(self._head, out)
        self._head = ""
        return self._end(out)

    def _parse(self, text: str) -> list[ParsedCall]:
        match = self.CALL.match(text)
        if not match or match.group(1) not in self.names:
            return []
        arguments = _python_kwargs(match.group(2).strip())
        return [ParsedCall(match.group(1), arguments)] if arguments is not None else []


def _python_kwargs(code: str) -> str | None:
    """`tool_call(a=1, b="x")` as the JSON object {"a": 1, "b": "x"}: literals only, nothing is run."""
    try:
        node = ast.parse(code, mode="eval").body
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "tool_call"
                and not node.args and all(k.arg for k in node.keywords)):
            return None
        return json.dumps({k.arg: ast.literal_eval(k.value) for k in node.keywords}, ensure_ascii=False)
    except (SyntaxError, ValueError, TypeError):
        return None
