"""Turns chat completion requests into engine requests and engine output into OpenAI responses."""

from __future__ import annotations

import time
from typing import AsyncIterator

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from .engine.base import GenerationOutput, RequestStream
from .engine.sampling import SamplingParams
from .errors import APIError
from .protocol import (
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatCompletionStreamChoice,
    DeltaMessage,
    ResponseMessage,
    completion_id,
)
from .serving_common import STREAM_HEADERS, EventStreamResponse, OpenAIServing, RequestRecord


class OpenAIServingChat(OpenAIServing):
    log_event = "chat_completion"

    async def create_chat_completion(self, request: ChatCompletionRequest, raw_request: Request) -> Response:
        request_id = raw_request.state.request_id
        await self._check_model(request.model)
        prompt_ids = self._render_prompt(request)
        params = self._sampling_params(request, len(prompt_ids))
        stream, record = self._submit(request_id, prompt_ids, params, request.stream)
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            return EventStreamResponse(self._stream(stream, record, include_usage), headers=STREAM_HEADERS)
        return await self._complete(stream, record, raw_request)

    # -- request → engine ---------------------------------------------------------------
    def _render_prompt(self, request: ChatCompletionRequest) -> list[int]:
        tokenizer = self.manager.tokenizer
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                    for m in request.messages]
        try:
            rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        except Exception as exc:  # templates raise on orders they do not accept
            raise APIError(400, f"messages: the model's chat template rejected them: {exc}",
                           param="messages", code="invalid_messages") from None
        ids = rendered["input_ids"] if hasattr(rendered, "keys") else rendered
        return list(ids)

    def _sampling_params(self, request: ChatCompletionRequest, prompt_len: int) -> SamplingParams:
        param = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
        max_tokens = self._max_tokens(prompt_len, request.requested_max_tokens, param, "messages")
        temperature = request.temperature
        if temperature is None:
            temperature = self._default_temperature()
        return SamplingParams(max_tokens=max_tokens, temperature=temperature,
                              top_p=request.top_p if request.top_p is not None else 1.0,
                              seed=request.seed, stop=tuple(request.stop or ()))

    # -- engine → response ---------------------------------------------------------------
    def _stream(self, stream: RequestStream, record: RequestRecord, include_usage: bool) -> AsyncIterator[str]:
        chunk_id, created, model = completion_id(), int(time.time()), self.manager.model_name

        def chunk(delta: DeltaMessage, finish_reason: str | None = None) -> str:
            body = ChatCompletionChunk(id=chunk_id, created=created, model=model, choices=[
                ChatCompletionStreamChoice(delta=delta, finish_reason=finish_reason)])
            return f"data: {body.model_dump_json(exclude_none=True)}\n\n"

        def render(out: GenerationOutput) -> list[str]:
            events = []
            if out.text:
                events.append(chunk(DeltaMessage(content=out.text)))
            if out.finish_reason in ("stop", "length"):
                events.append(chunk(DeltaMessage(), out.finish_reason))
                if include_usage:
                    usage = ChatCompletionChunk(id=chunk_id, created=created, model=model, choices=[],
                                                usage=record.usage())
                    events.append(f"data: {usage.model_dump_json(exclude_none=True)}\n\n")
            return events

        return self._events(stream, record, render, opening=chunk(DeltaMessage(role="assistant", content="")))

    async def _complete(self, stream: RequestStream, record: RequestRecord, raw_request: Request) -> Response:
        cancelled = await self._collect(stream, record, raw_request)
        if cancelled is not None:
            return cancelled
        body = ChatCompletionResponse(model=self.manager.model_name, choices=[ChatCompletionChoice(
            message=ResponseMessage(content="".join(record.output)), finish_reason=record.finish_reason)],
            usage=record.usage())
        return JSONResponse(body.model_dump())
