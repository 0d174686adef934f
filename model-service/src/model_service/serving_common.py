"""What the chat and the text completion servings share: admission to the engine, the request record,
the stream and wait-for-the-end loops (with cancellation when the client leaves), usage and the log line.
Each serving keeps its own prompt rendering and response shapes."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable, Iterable

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from .engine.base import GenerationOutput, GenerationRequest, QueueFullError, RequestStream
from .engine.constraints import Constraint
from .engine.sampling import SamplingParams
from .errors import APIError, encode_json
from .metrics import ServiceMetrics
from .model_manager import ModelManager
from .protocol import UsageInfo

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
class RequestRecord:
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

    def usage(self) -> UsageInfo:
        return UsageInfo(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
                         total_tokens=self.prompt_tokens + self.completion_tokens)


class OpenAIServing:
    """The engine side of an OpenAI endpoint; `log_event` names its request log lines."""

    log_event = "completion"

    def __init__(self, manager: ModelManager, metrics: ServiceMetrics) -> None:
        self.manager = manager
        self.metrics = metrics

    async def _check_model(self, model: str | None) -> None:
        await self.manager.ensure_loaded()
        if not self.manager.is_ready():
            raise APIError(503, "the model is not ready", code="model_not_ready", headers={"Retry-After": "5"})
        if model not in (None, "", self.manager.model_name):
            raise APIError(404, f"The model `{model}` does not exist.", param="model", code="model_not_found")

    def _submit(self, request_id: str, prompt_ids: list[int], params: SamplingParams, stream: bool,
                constraint: Constraint | None = None) -> tuple[RequestStream, RequestRecord]:
        try:
            engine_stream = self.manager.engine.submit(GenerationRequest(request_id, prompt_ids, params, constraint))
        except QueueFullError as exc:
            raise APIError(503, f"the server is busy ({exc.waiting} requests waiting); retry later",
                           code="queue_full", headers={"Retry-After": str(exc.retry_after_s)}) from None
        self.metrics.prompt_tokens.inc(len(prompt_ids))
        return engine_stream, RequestRecord(request_id, stream, len(prompt_ids), prompt_ids=prompt_ids)

    def _max_tokens(self, prompt_len: int, requested: int | None, param: str, prompt_param: str) -> int:
        """The completion budget: as requested when it fits the context, else the deployment's default
        cut to what the context leaves."""
        max_len = self.manager.max_model_len
        if prompt_len >= max_len:
            raise APIError(400, f"This model's maximum context length is {max_len} tokens, but the prompt has "
                                f"{prompt_len} tokens.", param=prompt_param, code="context_length_exceeded")
        if requested is None:
            return min(self.manager.settings.default_max_tokens, max_len - prompt_len)
        if prompt_len + requested > max_len:
            raise APIError(400, f"This model's maximum context length is {max_len} tokens, but you requested "
                                f"{prompt_len + requested} tokens ({prompt_len} in the {prompt_param}, {requested} "
                                f"in the completion).", param=param, code="context_length_exceeded")
        return requested

    def _default_temperature(self) -> float:
        """The model's own generation config decides when the request does not (as vLLM does)."""
        engine_model = getattr(self.manager.engine, "model", None)
        config = getattr(engine_model, "generation_config", None)
        if config is not None and getattr(config, "do_sample", False):
            return float(getattr(config, "temperature", 1.0) or 1.0)
        return 0.0

    async def _events(self, stream: RequestStream, record: RequestRecord,
                      render: Callable[[GenerationOutput], Iterable[str]], opening: str | None = None
                      ) -> AsyncIterator[str]:
        """The SSE events of a stream: `opening` at once (before the first token), `render`'s for each output (its text, and its end unless the
        engine failed), an error event when generation failed, then `data: [DONE]`. A client that
        leaves cancels the generation."""
        status = 200
        try:
            if opening is not None:
                yield opening
            async for out in stream:
                record.saw(out)
                for event in render(out):
                    yield event
                if out.finish_reason == "error":
                    failure = generation_failure(out)
                    status = failure.status
                    yield f"data: {encode_json(failure.body().model_dump())}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            if not stream.finished:
                stream.cancel()  # the client went away: free the batch slot now
                record.finish_reason = "cancelled"
                status = 499
            self._log(record, status)

    async def _collect(self, stream: RequestStream, record: RequestRecord, raw_request: Request) -> Response | None:
        """Waits for the whole output. None when it finished; the answer for a client that left (499)
        or raises the failure when generation failed."""
        async def collect() -> None:
            async for out in stream:
                record.saw(out)

        collector = asyncio.ensure_future(collect())
        watcher = asyncio.ensure_future(client_gone(raw_request))
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
            failure = generation_failure(record.last)
            self._log(record, failure.status)
            raise failure
        self._log(record, 200)
        return None

    def _log(self, record: RequestRecord, status: int) -> None:
        self.metrics.completion_tokens.inc(record.completion_tokens)
        now = time.perf_counter()
        request_log.info(json.dumps({
            "event": self.log_event,
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
                "event": f"{self.log_event}_text", "request_id": record.request_id,
                "prompt": self.manager.tokenizer.decode(record.prompt_ids), "output": "".join(record.output),
            }, ensure_ascii=False))


def generation_failure(out: GenerationOutput | None) -> APIError:
    """A failure the request caused alone (the engine served the others) is 422, not 500: the gateway
    neither retries it on another replica nor counts it against the replica's health."""
    message = (out.error if out else None) or "generation failed"
    if out is not None and out.caused_by_request:
        return APIError(422, message, code="request_generation_failed")
    return APIError(500, message, code="generation_error")


async def client_gone(raw_request: Request) -> None:
    """Returns when the client disconnects (the body has been read, so only disconnect can come)."""
    while True:
        message = await raw_request.receive()
        if message["type"] == "http.disconnect":
            return
