"""Turns chat completion requests into engine requests and engine output into OpenAI responses."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import AsyncIterator

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from .engine.base import GenerationOutput, GenerationRequest, QueueFullError, RequestStream
from .engine.sampling import SamplingParams
from .errors import APIError, encode_json
from .metrics import ServiceMetrics
from .model_manager import ModelManager
from .protocol import (
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatCompletionStreamChoice,
    DeltaMessage,
    ResponseMessage,
    UsageInfo,
    completion_id,
)
from .structured_outputs import response_format_constraint
from .tool_calls import ToolPlan, finish_reason_with_calls

request_log = logging.getLogger("model_service.requests")

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class EventStreamResponse(StreamingResponse):
    """A StreamingResponse that always closes its generator, so a client that went away
    releases its batch slot at once instead of whenever the generator is collected."""

    media_type = "text/event-stream"

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()


@dataclass
class _RequestRecord:
    """What the per-request log line and the metrics need."""

    request_id: str
    stream: bool
    prompt_tokens: int
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    completion_tokens: int = 0
    finish_reason: str | None = None
    prompt_ids: list[int] = field(default_factory=list, repr=False)
    output: list[str] = field(default_factory=list, repr=False)
    last: GenerationOutput | None = None  # the output that finished the request

    def saw(self, out: GenerationOutput) -> None:
        if self.first_token_at is None and out.completion_tokens:
            self.first_token_at = time.perf_counter()
        self.completion_tokens = out.completion_tokens
        if out.text:
            self.output.append(out.text)
        if out.finish_reason:
            self.finish_reason = out.finish_reason
            self.last = out


class OpenAIServingChat:
    def __init__(self, manager: ModelManager, metrics: ServiceMetrics) -> None:
        self.manager = manager
        self.metrics = metrics

    async def create_chat_completion(self, request: ChatCompletionRequest, raw_request: Request) -> Response:
        request_id = raw_request.state.request_id
        await self.manager.ensure_loaded()
        if not self.manager.is_ready():
            raise APIError(503, "the model is not ready", code="model_not_ready", headers={"Retry-After": "5"})
        if request.model not in (None, "", self.manager.model_name):
            raise APIError(404, f"The model `{request.model}` does not exist.", param="model",
                           code="model_not_found")
        tools = ToolPlan.for_request(request, self._model_type())
        prompt_ids = self._render_prompt(request, tools)
        params = self._sampling_params(request, len(prompt_ids))
        # With required or a named function the call's grammar decides; response_format shapes text answers.
        # Both are built, so that either one's bad schema is a 400.
        tool_constraint = tools.constraint(self.manager)
        format_constraint = response_format_constraint(request.response_format, self.manager)
        constraint = tool_constraint or format_constraint
        try:
            stream = self.manager.engine.submit(GenerationRequest(request_id, prompt_ids, params, constraint))
        except QueueFullError as exc:
            raise APIError(503, f"the server is busy ({exc.waiting} requests waiting); retry later",
                           code="queue_full", headers={"Retry-After": str(exc.retry_after_s)}) from None
        record = _RequestRecord(request_id, request.stream, len(prompt_ids), prompt_ids=prompt_ids)
        self.metrics.prompt_tokens.inc(len(prompt_ids))
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
        max_len = self.manager.max_model_len
        max_tokens = request.requested_max_tokens
        param = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
        if prompt_len >= max_len:
            raise APIError(400, f"This model's maximum context length is {max_len} tokens, but the prompt has "
                                f"{prompt_len} tokens.", param="messages", code="context_length_exceeded")
        if max_tokens is None:
            max_tokens = min(self.manager.settings.default_max_tokens, max_len - prompt_len)
        elif prompt_len + max_tokens > max_len:
            raise APIError(400, f"This model's maximum context length is {max_len} tokens, but you requested "
                                f"{prompt_len + max_tokens} tokens ({prompt_len} in the messages, {max_tokens} in "
                                f"the completion).", param=param, code="context_length_exceeded")
        temperature = request.temperature
        if temperature is None:
            temperature = self._default_temperature()
        return SamplingParams(max_tokens=max_tokens, temperature=temperature,
                              top_p=request.top_p if request.top_p is not None else 1.0,
                              seed=request.seed, stop=tuple(request.stop or ()))

    def _model_type(self) -> str | None:
        config = getattr(getattr(self.manager.engine, "model", None), "config", None)
        return getattr(config, "model_type", None)

    def _default_temperature(self) -> float:
        """The model's own generation config decides when the request does not (as vLLM does)."""
        engine_model = getattr(self.manager.engine, "model", None)
        config = getattr(engine_model, "generation_config", None)
        if config is not None and getattr(config, "do_sample", False):
            return float(getattr(config, "temperature", 1.0) or 1.0)
        return 0.0

    # -- engine → response ---------------------------------------------------------------
    async def _stream(self, stream: RequestStream, record: _RequestRecord, include_usage: bool,
                      tools: ToolPlan) -> AsyncIterator[str]:
        chunk_id, created, model = completion_id(), int(time.time()), self.manager.model_name

        def chunk(delta: DeltaMessage, finish_reason: str | None = None) -> str:
            body = ChatCompletionChunk(id=chunk_id, created=created, model=model, choices=[
                ChatCompletionStreamChoice(delta=delta, finish_reason=finish_reason)])
            return f"data: {body.model_dump_json(exclude_none=True)}\n\n"

        status = 200
        calls = tools.parser() if tools.parses_output else None
        try:
            yield chunk(DeltaMessage(role="assistant", content=""))
            async for out in stream:
                record.saw(out)
                if out.text:
                    for delta in calls.feed(out.text) if calls else [DeltaMessage(content=out.text)]:
                        yield chunk(delta)
                if out.finish_reason == "error":
                    failure = _generation_failure(out)
                    status = failure.status
                    yield f"data: {encode_json(failure.body().model_dump())}\n\n"
                elif out.finish_reason in ("stop", "length"):
                    for delta in calls.finish() if calls else ():
                        yield chunk(delta)
                    yield chunk(DeltaMessage(), finish_reason_with_calls(out.finish_reason, calls and calls.called))
                    if include_usage:
                        usage = ChatCompletionChunk(id=chunk_id, created=created, model=model, choices=[],
                                                    usage=self._usage(record))
                        yield f"data: {usage.model_dump_json(exclude_none=True)}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            if not stream.finished:
                stream.cancel()  # the client went away: free the batch slot now
                record.finish_reason = "cancelled"
                status = 499
            self._log(record, status)

    async def _complete(self, stream: RequestStream, record: _RequestRecord, raw_request: Request,
                        tools: ToolPlan) -> Response:
        async def collect() -> None:
            async for out in stream:
                record.saw(out)

        collector = asyncio.ensure_future(collect())
        watcher = asyncio.ensure_future(_client_gone(raw_request))
        try:
            await asyncio.wait({collector, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            if not collector.done():
                stream.cancel()  # the client aborted: stop generating for nobody
                collector.cancel()
        if not stream.finished or record.finish_reason == "cancelled":
            record.finish_reason = "cancelled"
            self._log(record, 499)
            return Response(status_code=499)
        if record.finish_reason == "error":
            failure = _generation_failure(record.last)
            self._log(record, failure.status)
            raise failure
        self._log(record, 200)
        content, calls = "".join(record.output), []
        if tools.parses_output:
            content, calls = tools.parse(content)
        body = ChatCompletionResponse(model=self.manager.model_name, choices=[ChatCompletionChoice(
            message=ResponseMessage(content=content, tool_calls=calls or None),
            finish_reason=finish_reason_with_calls(record.finish_reason, bool(calls)))],
            usage=self._usage(record))
        return JSONResponse(body.model_dump())

    @staticmethod
    def _usage(record: _RequestRecord) -> UsageInfo:
        return UsageInfo(prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens,
                         total_tokens=record.prompt_tokens + record.completion_tokens)

    def _log(self, record: _RequestRecord, status: int) -> None:
        self.metrics.completion_tokens.inc(record.completion_tokens)
        now = time.perf_counter()
        request_log.info(json.dumps({
            "event": "chat_completion",
            "request_id": record.request_id,
            "status": status,
            "stream": record.stream,
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "ttft_ms": round((record.first_token_at - record.started) * 1000, 1) if record.first_token_at else None,
            "duration_ms": round((now - record.started) * 1000, 1),
            "finish_reason": record.finish_reason,
        }))
        if request_log.isEnabledFor(logging.DEBUG):  # texts are user data: only when asked for
            request_log.debug(json.dumps({
                "event": "chat_completion_text", "request_id": record.request_id,
                "prompt": self.manager.tokenizer.decode(record.prompt_ids), "output": "".join(record.output),
            }, ensure_ascii=False))


def _generation_failure(out: GenerationOutput | None) -> APIError:
    """A failure the request caused alone (the engine served the others) is 422, not 500: the gateway
    neither retries it on another replica nor counts it against the replica's health."""
    message = (out.error if out else None) or "generation failed"
    if out is not None and out.caused_by_request:
        return APIError(422, message, code="request_generation_failed")
    return APIError(500, message, code="generation_error")


async def _client_gone(raw_request: Request) -> None:
    """Returns when the client disconnects (the body has been read, so only disconnect can come)."""
    while True:
        message = await raw_request.receive()
        if message["type"] == "http.disconnect":
            return
