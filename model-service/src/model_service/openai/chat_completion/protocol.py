"""/v1/chat/completions request and response schemas (messages, tools, response formats), fields in OpenAI's order."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..common.protocol import (
    LOGIT_BIAS_LIMIT,
    MAX_TOP_LOGPROBS,
    SEED_MAX,
    SEED_MIN,
    OpenAIBaseModel,
    StreamOptions,
    TopLogprob,
    UsageInfo,
    stop_list,
    unicode_text,
)


class TextContentPart(OpenAIBaseModel):
    type: Literal["text"]
    text: str

    @field_validator("text")
    @classmethod
    def _unicode(cls, text: str) -> str:
        return unicode_text(text)


# -- tool calling (OpenAI's function tools) -------------------------------------------------

TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"


class FunctionDefinition(OpenAIBaseModel):
    name: Annotated[str, Field(pattern=TOOL_NAME_PATTERN)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @field_validator("parameters")
    @classmethod
    def _json_schema_object(cls, parameters: dict[str, Any] | None) -> dict[str, Any] | None:
        if parameters is None:
            return None
        # The arguments a model writes are a JSON object: a schema for anything else can never be met.
        if parameters.get("type", "object") != "object":
            raise ValueError(f"must be a JSON Schema of type \"object\", got type {parameters.get('type')!r}")
        import jsonschema  # only requests with tools pay for the import

        try:
            jsonschema.validators.validator_for(parameters, default=jsonschema.Draft202012Validator) \
                .check_schema(parameters)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"is not a valid JSON Schema: {exc.message}") from None
        return parameters


class ChatCompletionToolParam(OpenAIBaseModel):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(OpenAIBaseModel):
    name: str


class ChatCompletionNamedToolChoiceParam(OpenAIBaseModel):
    type: Literal["function"]
    function: NamedFunction


class FunctionCall(OpenAIBaseModel):
    name: str
    arguments: str  # a JSON object, as text


class ChatCompletionMessageToolCall(OpenAIBaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class DeltaFunctionCall(OpenAIBaseModel):
    name: str | None = None
    arguments: str | None = None


class DeltaToolCall(OpenAIBaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: DeltaFunctionCall | None = None


# Tagged "str"/"dict" so that an error's location reads `tool_choice...`, without a class name in it.
ToolChoice = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("str")]
    | Annotated[ChatCompletionNamedToolChoiceParam, Tag("dict")],
    Discriminator(lambda v: "str" if isinstance(v, str) else "dict"),
]


def tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


class ChatMessage(OpenAIBaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[TextContentPart] | None = None
    name: str | None = None
    tool_calls: list[ChatCompletionMessageToolCall] | None = None  # assistant messages only
    tool_call_id: str | None = Field(None, validate_default=True)  # tool messages only, and required there

    @field_validator("tool_call_id")
    @classmethod
    def _tool_result_names_its_call(cls, tool_call_id: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("role") == "tool" and not tool_call_id:
            raise ValueError("a tool message needs the tool_call_id of the call it answers")
        return tool_call_id

    @field_validator("content")
    @classmethod
    def _unicode(cls, content):
        return unicode_text(content) if isinstance(content, str) else content

    @model_validator(mode="after")
    def _content_required(self) -> "ChatMessage":
        if self.content is None and self.role != "assistant":
            raise ValueError(f"a {self.role} message needs content")
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"a {self.role} message cannot carry tool_calls")
        return self

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class JsonSchemaFormat(OpenAIBaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str = Field(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    # "schema" would shadow BaseModel.schema(); the wire name stays "schema".
    schema_: dict | bool = Field(alias="schema")
    strict: bool | None = None  # the grammar enforces the schema either way


class ResponseFormat(OpenAIBaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> "ResponseFormat":
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError('type "json_schema" needs a json_schema object')
        return self


class ChatCompletionRequest(OpenAIBaseModel):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    model: str | None = None
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = False
    max_completion_tokens: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1)  # the upper bound is a setting (MODEL_SERVICE_MAX_N), checked when serving
    parallel_tool_calls: bool | None = None  # default: true
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    response_format: ResponseFormat | None = None
    seed: int | None = Field(None, ge=SEED_MIN, le=SEED_MAX)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    # tools before tool_choice (against OpenAI's alphabetical order): tool_choice is checked against them.
    tools: list[ChatCompletionToolParam] | None = None
    tool_choice: ToolChoice | None = Field(None, validate_default=True)
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    user: str | None = None
    # vLLM's extension: prefix-cache entries are shared only among requests with the same salt (the
    # gateway sets one per API key when it isolates keys, so one tenant cannot time another's prompts).
    cache_salt: str | None = Field(None, min_length=1, max_length=256)
    # vLLM's extension: > 1 discourages tokens already in the prompt or output, < 1 encourages them
    repetition_penalty: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    # llm-relay's extension: every array that the response_format schema or a forced tool call's parameters
    # leave without maxItems holds at most this many items (a small model's list loops end there)
    max_array_items: int | None = Field(None, ge=1, le=1000)

    @field_validator("logit_bias")
    @classmethod
    def _logit_bias(cls, bias: dict[str, float] | None) -> dict[str, float] | None:
        for key, value in (bias or {}).items():
            if not key.isascii() or not key.isdigit():
                raise ValueError(f"keys must be token ids (non-negative integers as strings), got {key!r}")
            if not -LOGIT_BIAS_LIMIT <= value <= LOGIT_BIAS_LIMIT:
                raise ValueError(f"the bias of token {key} must be between -100 and 100, got {value}")
        return bias

    @field_validator("top_logprobs")
    @classmethod
    def _top_logprobs_needs_logprobs(cls, top_logprobs: int | None, info: ValidationInfo) -> int | None:
        if top_logprobs is not None and not info.data.get("logprobs"):
            raise ValueError("`logprobs` must be true when `top_logprobs` is set")
        return top_logprobs

    _stop_list = field_validator("stop")(stop_list)

    @field_validator("tools")
    @classmethod
    def _unique_tool_names(cls, tools: list[ChatCompletionToolParam] | None) -> list[ChatCompletionToolParam] | None:
        names = [t.function.name for t in tools or ()]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"function names must be unique; {', '.join(duplicates)} appears more than once")
        return tools

    @field_validator("tool_choice")
    @classmethod
    def _choice_among_tools(cls, choice, info: ValidationInfo):
        if "tools" not in info.data:  # tools itself was invalid: that error is the one to report
            return choice
        tools = info.data["tools"]
        if choice is not None and not tools:
            raise ValueError("tool_choice is only allowed when tools are given")
        if isinstance(choice, ChatCompletionNamedToolChoiceParam) and \
                choice.function.name not in {t.function.name for t in tools}:
            raise ValueError(f"names function {choice.function.name!r}, which is not among the tools")
        return choice

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class ResponseMessage(OpenAIBaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    # Left out of the JSON when there are none (`exclude_if`), as OpenAI leaves it out.
    tool_calls: list[ChatCompletionMessageToolCall] | None = Field(None, exclude_if=lambda calls: calls is None)


class ChatCompletionTokenLogprob(OpenAIBaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class ChoiceLogprobs(OpenAIBaseModel):
    content: list[ChatCompletionTokenLogprob] | None = None


class ChatCompletionChoice(OpenAIBaseModel):
    index: int = 0
    message: ResponseMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: str | None = None


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class ChatCompletionResponse(OpenAIBaseModel):
    id: str = Field(default_factory=completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatCompletionChoice]
    usage: UsageInfo


class DeltaMessage(OpenAIBaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[DeltaToolCall] | None = None


class ChatCompletionStreamChoice(OpenAIBaseModel):
    index: int = 0
    delta: DeltaMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: str | None = None


class ChatCompletionChunk(OpenAIBaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatCompletionStreamChoice]
    usage: UsageInfo | None = None
