"""Tool calling: how tools reach the prompt, and how calls are read back out of the model's text.

Prompt. A chat template that uses a `tools` variable (Qwen, Hermes, Llama 3...) gets the tools
and the history's calls and results in transformers' convention (`apply_chat_template(...,
tools=...)`). A template without one (SmolLM2's) gets the system-prompt rendering of the
model's dialect, documented in docs/tool-calling.md:
- Hermes (every model but the ChatGLM family): the tools as JSON lines inside `<tools></tools>`
  in a system block; calls as `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`;
  results as a user turn of `<tool_response>...</tool_response>` blocks.
- ChatGLM3: the tools as indented JSON after the system text, as its own demo does; calls as
  a line with the function name, then ```python tool_call(key=value, ...)```; results as
  `observation` turns.

Output. With `auto`, the text is parsed for calls in the dialect's format, chunk by chunk when
streamed: text that could still become a call (a partial `<tool_call>` tag, a ChatGLM3 first
line) is held back, never sent as content. A block that does not parse, or names a function
that is not among the tools, stays content: nothing the model wrote is lost. With `none`, the
tools are not shown and the text is not parsed.

With `required` or a named function, a JSON-schema grammar (engine/grammar.py) makes the model
write the calls as bare JSON, `{"name": <one of the tools>, "arguments": <that function's
parameters schema>}` (a list of one or more of those when `required` allows parallel calls), and
nothing else: every call it returns parses and validates against its function's schema. Its
arguments stream as they are generated.
"""

from __future__ import annotations

import ast
import functools
import json
import logging
import re
from dataclasses import dataclass, field
from .errors import APIError
from .protocol import (
    ChatCompletionMessageToolCall,
    ChatCompletionNamedToolChoiceParam,
    ChatCompletionRequest,
    ChatMessage,
    DeltaFunctionCall,
    DeltaMessage,
    DeltaToolCall,
    FunctionCall,
    FunctionDefinition,
    tool_call_id,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParsedCall:
    name: str
    arguments: str  # a JSON object, as text


def _arguments_text(arguments) -> str | None:
    """The arguments as a JSON object's text, or None when they are not an object."""
    if isinstance(arguments, str):  # some models write the object as a JSON string
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return json.dumps(arguments, ensure_ascii=False)


# -- dialects ---------------------------------------------------------------------------------

class HermesDialect:
    name = "hermes"
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
                  f'"arguments": {_history_arguments(c.function.arguments)}}}\n{self.END}' for c in calls]
        return "\n".join(([content] if content else []) + blocks)

    def render_results(self, results: list[ChatMessage]) -> dict:
        return {"role": "user",
                "content": "\n".join(f"<tool_response>\n{m.text()}\n</tool_response>" for m in results)}

    def parser(self, names: set[str], parallel: bool) -> "ToolStreamParser":
        return HermesStreamParser(names, parallel)


class ChatGLM3Dialect:
    name = "chatglm3"

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

    def parser(self, names: set[str], parallel: bool) -> "ToolStreamParser":
        return ChatGLM3StreamParser(names, parallel)


def _history_arguments(arguments: str) -> str:
    """A history call's arguments as a JSON value in the prompt (kept verbatim when they are not JSON)."""
    try:
        return json.dumps(json.loads(arguments), ensure_ascii=False)
    except ValueError:
        return json.dumps(arguments, ensure_ascii=False)


def dialect_for(model_type: str | None):
    return ChatGLM3Dialect() if model_type and model_type.startswith("chatglm") else HermesDialect()


@functools.lru_cache(maxsize=8)
def template_uses_tools(template: str | None) -> bool:
    """Whether a chat template reads a `tools` variable (as transformers' tool-use templates do)."""
    if not isinstance(template, str):
        return False
    import jinja2
    from jinja2 import meta

    try:
        return "tools" in meta.find_undeclared_variables(jinja2.Environment().parse(template))
    except jinja2.TemplateError:
        return False


def finish_reason_with_calls(reason: str | None, called: bool) -> str | None:
    """A reply that ended on its own after calling tools finished for "tool_calls" (cut short stays "length")."""
    return "tool_calls" if called and reason == "stop" else reason


# -- the plan for one request ---------------------------------------------------------------

@dataclass
class ToolPlan:
    """What a request's tools mean for its prompt and its output."""

    mode: str  # "none" | "auto" | "required" | "named"
    functions: list[FunctionDefinition] = field(default_factory=list)
    named: str | None = None
    parallel: bool = True
    dialect: object = field(default_factory=HermesDialect)

    @classmethod
    def for_request(cls, request: ChatCompletionRequest, model_type: str | None = None) -> "ToolPlan":
        functions = [t.function for t in request.tools or ()]
        choice = request.tool_choice
        if not functions:
            mode, named = "none", None
        elif isinstance(choice, ChatCompletionNamedToolChoiceParam):
            mode, named = "named", choice.function.name
        else:
            mode, named = choice or "auto", None
        return cls(mode, functions, named, request.parallel_tool_calls is not False, dialect_for(model_type))

    @property
    def parses_output(self) -> bool:
        return self.mode != "none"

    @property
    def constrained(self) -> bool:
        return self.mode in ("required", "named")

    @property
    def offered(self) -> list[FunctionDefinition]:
        """The tools the model may call: the named one alone, or all of them; none with `none`."""
        if self.mode == "none":
            return []
        if self.mode == "named":
            return [f for f in self.functions if f.name == self.named]
        return self.functions

    def instruction(self) -> str:
        if self.mode == "named":
            return f"\n\nYou must call the function {self.named}."
        if self.mode == "required":
            return "\n\nYou must call at least one function." if self.parallel else "\n\nYou must call one function."
        return "" if self.parallel else "\n\nCall at most one function at a time."

    # -- prompt ---------------------------------------------------------------------------
    def template_inputs(self, messages: list[ChatMessage], template: str | None) -> tuple[list[dict], dict]:
        """The messages (and extra `apply_chat_template` arguments) that render this request."""
        if template_uses_tools(template):
            kwargs = {"tools": [{"type": "function", "function": f.model_dump(exclude_none=True)}
                                for f in self.offered]} if self.offered else {}
            return [_template_message(m) for m in messages], kwargs
        return self._system_prompt_rendering(messages), {}

    def _system_prompt_rendering(self, messages: list[ChatMessage]) -> list[dict]:
        out: list[dict] = []
        results: list[ChatMessage] = []
        for m in messages:
            if m.role == "tool":  # consecutive results go back to the model as one turn
                results.append(m)
                continue
            if results:
                out.append(self.dialect.render_results(results))
                results = []
            role = "system" if m.role == "developer" else m.role
            content = self.dialect.render_calls(m.text(), m.tool_calls) if m.tool_calls else m.text()
            out.append({"role": role, "content": content})
        if results:
            out.append(self.dialect.render_results(results))
        if self.offered:
            block = self.dialect.system_prompt(self.offered, self.instruction())
            if out and out[0]["role"] == "system":
                out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{block}"}
            else:
                out.insert(0, {"role": "system", "content": block})
        return out

    # -- constrained decoding (required, named) ---------------------------------------------
    def constraint_schema(self) -> dict:
        """The JSON schema the whole output must meet: a call, or with parallel `required` a list of calls."""
        if self.mode == "named" or not self.parallel:
            base = ""
        else:
            base = "/items"
        calls = self.offered
        if len(calls) == 1:
            one = _call_schema(calls[0], base)
        else:
            one = {"anyOf": [_call_schema(f, f"{base}/anyOf/{i}") for i, f in enumerate(calls)]}
        return one if not base else {"type": "array", "items": one, "minItems": 1}

    def constraint(self, manager):
        """The grammar constraint for `required` or a named function (None otherwise). A parameters
        schema the grammar cannot enforce is the client's error: 400 naming it, never a silent fallback."""
        if not self.constrained:
            return None
        from .engine.grammar import SchemaError

        try:
            grammars = manager.grammars
        except RuntimeError as exc:  # this model's tokenizer cannot drive a grammar
            raise APIError(400, f"tool_choice {self.mode!r} needs constrained decoding: {exc}", param="tool_choice",
                           code="unsupported") from None
        try:
            return grammars.json_schema_constraint(self.constraint_schema())
        except SchemaError as exc:
            raise APIError(400, f"tools: a function's parameters cannot be enforced: {exc}", param="tools",
                           code="unsupported_schema") from None

    # -- output ---------------------------------------------------------------------------
    def parser(self) -> "ToolStreamParser":
        names = {f.name for f in self.offered}
        if self.constrained:
            return JsonCallsStreamParser(names, self.parallel)
        return self.dialect.parser(names, self.parallel)

    def parse(self, text: str) -> tuple[str | None, list[ChatCompletionMessageToolCall]]:
        """A whole output: its content (None when it is only calls) and its calls."""
        parser = self.parser()
        deltas = parser.feed(text) + parser.finish()
        content = "".join(d.content or "" for d in deltas)
        calls = [ChatCompletionMessageToolCall(id=c.id, function=FunctionCall(
            name=c.function.name, arguments="".join(
                f.function.arguments or "" for d in deltas for f in d.tool_calls or () if f.index == c.index)))
            for d in deltas for c in d.tool_calls or () if c.id]
        return (content if content or not calls else None), calls


def _call_schema(function: FunctionDefinition, at: str) -> dict:
    """One call of `function`, its parameters placed at JSON pointer `at` + /properties/arguments."""
    # No parameters is an empty parameter list (OpenAI): the only arguments are {}.
    parameters = function.parameters if function.parameters is not None else {
        "type": "object", "properties": {}, "additionalProperties": False}
    return {"type": "object", "properties": {
        "name": {"const": function.name},
        "arguments": _rebase_refs(parameters, f"{at}/properties/arguments"),
    }, "required": ["name", "arguments"], "additionalProperties": False}


def _rebase_refs(schema, base: str):
    """Local `$ref`s ("#/$defs/X", "#") rewritten for the schema's new place inside a larger one."""
    if isinstance(schema, dict):
        return {k: (f"#{base}{v[1:]}" if k == "$ref" and isinstance(v, str) and v.startswith("#")
                    else _rebase_refs(v, base)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_rebase_refs(v, base) for v in schema]
    return schema


def _template_message(m: ChatMessage) -> dict:
    """A message in transformers' convention: call arguments as a mapping, results with their call id."""
    out: dict = {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
    if m.tool_calls:
        out["tool_calls"] = [{"id": c.id, "type": "function", "function": {
            "name": c.function.name, "arguments": _arguments_mapping(c.function.arguments)}} for c in m.tool_calls]
    if m.tool_call_id:
        out["tool_call_id"] = m.tool_call_id
    if m.name:
        out["name"] = m.name
    return out


def _arguments_mapping(arguments: str):
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    return value if isinstance(value, dict) else arguments


# -- streamed output --------------------------------------------------------------------------

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


def _partial_prefix(text: str, tag: str) -> int:
    """The length of the longest end of `text` that is the start of `tag` (to be held back)."""
    for n in range(min(len(text), len(tag) - 1), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class HermesStreamParser(ToolStreamParser):
    START, END = HermesDialect.START, HermesDialect.END

    def __init__(self, names: set[str], parallel: bool) -> None:
        super().__init__(names, parallel)
        self._buffer = ""
        self._in_call = False

    def feed(self, text: str) -> list[DeltaMessage]:
        self._buffer += text
        out: list[DeltaMessage] = []
        while True:
            if not self._in_call:
                start = self._buffer.find(self.START)
                if start < 0:
                    keep = _partial_prefix(self._buffer, self.START)
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

    def finish(self) -> list[DeltaMessage]:
        out: list[DeltaMessage] = []
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
        try:
            value = json.loads(body)
        except ValueError:
            return None
        if not isinstance(value, dict) or value.get("name") not in self.names:
            return None
        arguments = _arguments_text(value.get("arguments", value.get("parameters", {})))
        return ParsedCall(value["name"], arguments) if arguments is not None else None


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
