"""OpenAI-compatible request and response schemas, fields in OpenAI's order."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


# OpenAI documents `seed` as an int64; torch seeds map each of these to a distinct generator state.
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1
MAX_TOP_LOGPROBS = 20  # OpenAI's limit
LOGIT_BIAS_LIMIT = 100.0


def unicode_text(value: str) -> str:
    """Text the model reads or matches must be Unicode: a lone UTF-16 surrogate (legal in JSON,
    e.g. a string cut in half by a client) has no UTF-8 form, so the tokenizer cannot encode it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"contains a lone surrogate (U+{ord(value[exc.start]):04X}) at index {exc.start}, "
                         "which is not Unicode text") from None
    return value


class OpenAIBaseModel(BaseModel):
    # OpenAI clients send fields we do not use (logprobs, tools...): accept and ignore them.
    model_config = ConfigDict(extra="ignore")


class ErrorInfo(OpenAIBaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(OpenAIBaseModel):
    error: ErrorInfo


class TextContentPart(OpenAIBaseModel):
    type: Literal["text"]
    text: str

    @field_validator("text")
    @classmethod
    def _unicode(cls, text: str) -> str:
        return unicode_text(text)


class ChatMessage(OpenAIBaseModel):
    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[TextContentPart] | None = None
    name: str | None = None

    @field_validator("content")
    @classmethod
    def _unicode(cls, content):
        return unicode_text(content) if isinstance(content, str) else content

    @model_validator(mode="after")
    def _content_required(self) -> "ChatMessage":
        if self.content is None and self.role != "assistant":
            raise ValueError(f"a {self.role} message needs content")
        return self

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(OpenAIBaseModel):
    include_usage: bool = False


class ChatCompletionRequest(OpenAIBaseModel):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    model: str | None = None
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = False
    max_completion_tokens: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1)  # the upper bound is a setting (MODEL_SERVICE_MAX_N), checked when serving
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    seed: int | None = Field(None, ge=SEED_MIN, le=SEED_MAX)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    user: str | None = None
    # vLLM's extension: > 1 discourages tokens already in the prompt or output, < 1 encourages them
    repetition_penalty: float | None = Field(None, gt=0.0, allow_inf_nan=False)

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

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, stop: str | list[str] | None) -> list[str]:
        if stop is None:
            return []
        stops = [stop] if isinstance(stop, str) else stop
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences")
        for i, stop in enumerate(stops):
            try:
                unicode_text(stop)
            except ValueError as exc:
                raise ValueError(f"stop sequence {i} {exc}") from None
        return stops

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class UsageInfo(OpenAIBaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ResponseMessage(OpenAIBaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class TopLogprob(OpenAIBaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


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


class ModelCard(OpenAIBaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "llm-relay"
    max_model_len: int | None = None


class ModelList(OpenAIBaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
