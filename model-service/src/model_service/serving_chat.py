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
from .structured_outputs import response_format_constraint
from .tool_calls import ToolPlan, finish_reason_with_calls


class OpenAIServingChat(OpenAIServing):
    log_event = "chat_completion"

    async def create_chat_completion(self, request: ChatCompletionRequest, raw_request: Request) -> Response:
        request_id = raw_request.state.request_id
        await self._check_model(request.model)
        tools = ToolPlan.for_request(request, self._model_type())
        prompt_ids = self._render_prompt(request, tools)
        params = self._sampling_params(request, len(prompt_ids))
        # With required or a named function the call's grammar decides; response_format shapes text answers.
        # Both are built, so that either one's bad schema is a 400.
        tool_constraint = tools.constraint(self.manager)
        format_constraint = response_format_constraint(request.response_format, self.manager)
        stream, record = self._submit(request_id, prompt_ids, params, request.stream,
                                      tool_constraint or format_constraint)
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            return EventStreamResponse(self._stream(stream, record, include_usage, tools), headers=STREAM_HEADERS)
        return await self._complete(stream, record, raw_request, tools)

    # -- request → engine ---------------------------------------------------------------
    def _render_prompt(self, request: ChatCompletionRequest, tools: ToolPlan) -> list[int]:
        tokenizer = self.manager.tokenizer
        messages, template_kwargs = tools.template_inputs(request.messages, tokenizer.chat_template)
        try:
            rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                     **template_kwargs)
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

    def _model_type(self) -> str | None:
        config = getattr(getattr(self.manager.engine, "model", None), "config", None)
        return getattr(config, "model_type", None)

    # -- engine → response ---------------------------------------------------------------
    def _stream(self, stream: RequestStream, record: RequestRecord, include_usage: bool,
                tools: ToolPlan) -> AsyncIterator[str]:
        chunk_id, created, model = completion_id(), int(time.time()), self.manager.model_name

        def chunk(delta: DeltaMessage, finish_reason: str | None = None) -> str:
            body = ChatCompletionChunk(id=chunk_id, created=created, model=model, choices=[
                ChatCompletionStreamChoice(delta=delta, finish_reason=finish_reason)])
            return f"data: {body.model_dump_json(exclude_none=True)}\n\n"

        calls = tools.parser() if tools.parses_output else None

        def render(out: GenerationOutput) -> list[str]:
            events = []
            if out.text:
                for delta in calls.feed(out.text) if calls else [DeltaMessage(content=out.text)]:
                    events.append(chunk(delta))
            if out.finish_reason in ("stop", "length"):
                for delta in calls.finish() if calls else ():
                    events.append(chunk(delta))
                events.append(chunk(DeltaMessage(), finish_reason_with_calls(out.finish_reason,
                                                                             calls and calls.called)))
                if include_usage:
                    usage = ChatCompletionChunk(id=chunk_id, created=created, model=model, choices=[],
                                                usage=record.usage())
                    events.append(f"data: {usage.model_dump_json(exclude_none=True)}\n\n")
            return events

        return self._events(stream, record, render, opening=chunk(DeltaMessage(role="assistant", content="")))

    async def _complete(self, stream: RequestStream, record: RequestRecord, raw_request: Request,
                        tools: ToolPlan) -> Response:
        cancelled = await self._collect(stream, record, raw_request)
        if cancelled is not None:
            return cancelled
        content, calls = "".join(record.output), []
        if tools.parses_output:
            content, calls = tools.parse(content)
        body = ChatCompletionResponse(model=self.manager.model_name, choices=[ChatCompletionChoice(
            message=ResponseMessage(content=content, tool_calls=calls or None),
            finish_reason=finish_reason_with_calls(record.finish_reason, bool(calls)))],
            usage=record.usage())
        return JSONResponse(body.model_dump())
