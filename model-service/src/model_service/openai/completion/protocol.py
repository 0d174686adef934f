"""/v1/completions request and response schemas, fields in OpenAI's order."""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import Field, field_validator

from ..common.protocol import SEED_MAX, SEED_MIN, OpenAIBaseModel, StreamOptions, UsageInfo, stop_list, unicode_text


class CompletionRequest(OpenAIBaseModel):
    """The legacy text completion: the prompt is tokenized as it is, without a chat template."""

    model: str | None = None
    # one prompt: a string or token ids, alone or as a list of one (batches of prompts are not served)
    prompt: str | list[int] | list[str] | list[list[int]]
    best_of: int | None = None
    echo: bool = False
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    logprobs: int | None = None
    max_tokens: int | None = Field(None, ge=1)
    n: int = 1
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    # vLLM's extension, as on chat completions
    repetition_penalty: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    seed: int | None = Field(None, ge=SEED_MIN, le=SEED_MAX)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    suffix: str | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    user: str | None = None
    # vLLM's extension: prefix-cache entries are shared only among requests with the same salt (the
    # gateway sets one per API key when it isolates keys, so one tenant cannot time another's prompts).
    cache_salt: str | None = Field(None, min_length=1, max_length=256)

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, prompt):
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, list)):
            if len(prompt) > 1:
                raise ValueError(f"a list of {len(prompt)} prompts: only one prompt per request is served")
            prompt = prompt[0]
        if isinstance(prompt, str):
            return unicode_text(prompt)
        if not prompt:
            raise ValueError("the prompt is empty")
        if any(token < 0 for token in prompt):
            raise ValueError("token ids are not negative")
        return prompt

    @field_validator("n")
    @classmethod
    def _only_one_choice(cls, n: int) -> int:
        # n > 1 is served for chat completions; text completions answer one choice for now
        if n != 1:
            raise ValueError("only n=1 is supported for text completions")
        return n
    _stop_list = field_validator("stop")(stop_list)

    # Features this service does not offer are refused by name rather than ignored.
    @field_validator("suffix")
    @classmethod
    def _no_suffix(cls, suffix: str | None) -> None:
        if suffix:
            raise ValueError("inserting text after the completion is not supported")
        return None

    @field_validator("best_of")
    @classmethod
    def _best_of_one(cls, best_of: int | None) -> int | None:
        if best_of not in (None, 1):
            raise ValueError("only best_of=1 is supported")
        return best_of

    @field_validator("logprobs", "logit_bias")
    @classmethod
    def _not_offered(cls, value):
        if value is not None and value != {}:
            raise ValueError("not supported on /v1/completions")
        return None


class CompletionChoice(OpenAIBaseModel):
    index: int = 0
    text: str
    logprobs: None = None
    finish_reason: str | None = None


def text_completion_id() -> str:
    return f"cmpl-{uuid.uuid4().hex}"


class CompletionResponse(OpenAIBaseModel):
    id: str = Field(default_factory=text_completion_id)
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo | None = None
