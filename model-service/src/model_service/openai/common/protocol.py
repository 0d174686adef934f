"""Protocol pieces every OpenAI endpoint shares (errors, usage, stream options, models), fields in OpenAI's order."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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


def stop_list(cls, stop: str | list[str] | None) -> list[str]:
    """`stop` as a list of at most 4 Unicode strings (a field validator both endpoints use)."""
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


class OpenAIBaseModel(BaseModel):
    # OpenAI clients send fields we do not use (logprobs...): accept and ignore them.
    model_config = ConfigDict(extra="ignore")


class ErrorInfo(OpenAIBaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(OpenAIBaseModel):
    error: ErrorInfo


class StreamOptions(OpenAIBaseModel):
    include_usage: bool = False


class UsageInfo(OpenAIBaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class TopLogprob(OpenAIBaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class ModelCard(OpenAIBaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "llm-relay"
    max_model_len: int | None = None


class ModelList(OpenAIBaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
