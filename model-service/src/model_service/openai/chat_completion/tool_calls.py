"""Tool calling for one request (`ToolPlan`): how its tools reach the prompt and which parser or grammar
reads its output. The dialects themselves (system-prompt rendering, streaming parsers) are in
`tool_parsers/`, one per file.

Prompt. A chat template that uses a `tools` variable (Qwen, Hermes, Llama 3...) gets the tools and the
history's calls and results in transformers' convention (`apply_chat_template(..., tools=...)`). A
template without one (SmolLM2's) gets the system-prompt rendering of the model's dialect.

Output. With `auto`, the text is parsed for calls in the dialect's format, chunk by chunk when streamed.
With `none`, the tools are not shown and the text is not parsed. With `required` or a named function, a
JSON-schema grammar (engine/grammar.py) makes the model write the calls as bare JSON, `{"name": <one of
the tools>, "arguments": <that function's parameters schema>}` (a list of one or more of those when
`required` allows parallel calls), and nothing else: every call it returns parses and validates against
its function's schema. Its arguments stream as they are generated.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field

from ...errors import APIError
from ...tool_parsers import JsonCallsStreamParser, ToolStreamParser, dialect_for
from .protocol import (
    ChatCompletionMessageToolCall,
    ChatCompletionNamedToolChoiceParam,
    ChatCompletionRequest,
    ChatMessage,
    FunctionCall,
    FunctionDefinition,
)

log = logging.getLogger(__name__)


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
    dialect: object = field(default_factory=lambda: dialect_for(None))  # Hermes, the default

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

    def constraint(self, manager, max_array_items: int | None = None):
        """The grammar constraint for `required` or a named function (None otherwise), unbounded arrays capped
        at `max_array_items` when given. A parameters schema the grammar cannot enforce is the client's error:
        400 naming it, never a silent fallback."""
        if not self.constrained:
            return None
        from ...engine.grammar import SchemaError

        try:
            grammars = manager.grammars
        except RuntimeError as exc:  # this model's tokenizer cannot drive a grammar
            raise APIError(400, f"tool_choice {self.mode!r} needs constrained decoding: {exc}", param="tool_choice",
                           code="unsupported") from None
        try:
            return grammars.json_schema_constraint(self.constraint_schema(), max_array_items)
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


