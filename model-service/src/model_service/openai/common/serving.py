"""What the chat and the text completion servings share: admission to the engine, the request record,
the stream and wait-for-the-end loops (with cancellation when the client leaves), usage and the log line.
Each serving keeps its own prompt rendering and response shapes."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field, replace
from typing import AsyncIterator, Callable, Iterable

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from ...engine.base import GenerationOutput, GenerationRequest, QueueFullError, RequestTimings
from ...engine.constraints import Constraint
from ...engine.sampling import SamplingParams, TokenLogprob
from ...errors import APIError, encode_json
from ...metrics import ServiceMetrics
from ...model_manager import ModelManager
from ...tracing import NO_SPAN, ChoiceEnd, GenerationSpan, Tracing
from .choice_streams import ChoiceStreams
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
class ChoiceRecord:
    """One choice's output so far."""

    completion_tokens: int = 0
    finish_reason: str | None = None
    output: list[str] = field(default_factory=list, repr=False)
    logprobs: list[TokenLogprob] = field(default_factory=list, repr=False)
    timings: RequestTimings | None = None  # the engine's, once it finished


@dataclass
class RequestRecord:
    """What the response, the per-request log line and the metrics need; usage counts every choice, the
    prompt once."""

    request_id: str
    stream: bool
    prompt_tokens: int
    started: float = field(default_factory=time.perf_counter)
    started_ns: int = field(default_factory=time.time_ns)  # wall clock, where its trace's phases begin
    first_token_at: float | None = None
    finish_reason: str | None = None
    prompt_ids: list[int] = field(default_factory=list, repr=False)
    choices: list[ChoiceRecord] = field(default_factory=lambda: [ChoiceRecord()], repr=False)
    last: GenerationOutput | None = None  # the output that finished the request (an error's, if any)
    response_id: str | None = None  # the id its response carries (chatcmpl-..., cmpl-...)
    span: GenerationSpan = field(default=NO_SPAN, repr=False)

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.choices)

    @property
    def output(self) -> list[str]:
        return self.choices[0].output

    def saw(self, out: GenerationOutput, index: int = 0) -> None:
        if self.first_token_at is None and out.completion_tokens:
            self.first_token_at = time.perf_counter()
        choice = self.choices[index]
        choice.completion_tokens = out.completion_tokens
        if out.text:
            choice.output.append(out.text)
        choice.logprobs += out.logprobs
        if out.finish_reason:
            choice.finish_reason = out.finish_reason
            choice.timings = out.timings
            if self.finish_reason != "error":  # one failed choice fails the request
                self.finish_reason = out.finish_reason
                self.last = out

    def usage(self) -> UsageInfo:
        return UsageInfo(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
                         total_tokens=self.prompt_tokens + self.completion_tokens)


class OpenAIServing:
    """The engine side of an OpenAI endpoint; `log_event` names its request log lines, `operation` its spans
    (gen_ai.operation.name)."""

    log_event = "completion"
    operation = "text_completion"

    def __init__(self, manager: ModelManager, metrics: ServiceMetrics, tracing: Tracing | None = None) -> None:
        self.manager = manager
        self.metrics = metrics
        self.tracing = tracing or Tracing(environ={})

    async def _check_model(self, model: str | None) -> None:
        await self.manager.ensure_loaded()
        if not self.manager.is_ready():
            raise APIError(503, "the model is not ready", code="model_not_ready", headers={"Retry-After": "5"})
        if model not in (None, "", self.manager.model_name):
            raise APIError(404, f"The model `{model}` does not exist.", param="model", code="model_not_found")

    def _submit(self, request_id: str, prompt_ids: list[int], params: SamplingParams, stream: bool, n: int = 1,
                constraint: Callable[[], Constraint | None] = lambda: None,
                cache_salt: str | None = None, *, response_id: str | None = None, requested_model: str | None = None,
                content: Callable[[], object] | None = None) -> tuple[ChoiceStreams, RequestRecord]:
        """One engine sequence per choice, sharing the prompt; each choice with its own seed, derived from the
        request's, so choices differ under sampling and the whole response repeats with the same seed, and its
        own `constraint()` (grammar state). All or nothing: when the queue cannot take every choice, none stays
        queued. The request's span starts here (`content`: its input, recorded only when an operator opted in)."""
        record = RequestRecord(request_id, stream, len(prompt_ids), prompt_ids=prompt_ids,
                               choices=[ChoiceRecord() for _ in range(n)], response_id=response_id)
        record.span = self.tracing.start_generation(
            self.operation, self.manager.model_name, request_id, requested_model=requested_model,
            max_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p, n=n, messages=content,
            start_ns=record.started_ns)
        streams = []
        try:
            for index in range(n):
                choice_params = params if index == 0 else replace(params, seed=choice_seed(params.seed, index))
                choice_id = request_id if n == 1 else f"{request_id}-{index}"
                streams.append(self.manager.engine.submit(
                    GenerationRequest(choice_id, prompt_ids, choice_params, constraint(), cache_salt)))
        except QueueFullError as exc:
            for choice_stream in streams:
                choice_stream.cancel()
            self._end_span(record, 503)
            raise APIError(503, f"the server is busy ({exc.waiting} requests waiting); retry later",
                           code="queue_full", headers={"Retry-After": str(exc.retry_after_s)}) from None
        self.metrics.prompt_tokens.inc(len(prompt_ids))
        return ChoiceStreams(streams), record

    def _max_tokens(self, prompt_len: int, requested: int | None, param: str, prompt_param: str,
                    default: int | None = None) -> int:
        """The completion budget: as requested when it fits the context, else `default` (the deployment's
        `default_max_tokens` when None) cut to what the context leaves."""
        max_len = self.manager.max_model_len
        if prompt_len >= max_len:
            raise APIError(400, f"This model's maximum context length is {max_len} tokens, but the prompt has "
                                f"{prompt_len} tokens.", param=prompt_param, code="context_length_exceeded")
        if requested is None:
            budget = default if default is not None else self.manager.settings.default_max_tokens
            return min(budget, max_len - prompt_len)
        if prompt_len + requested > max_len:
            raise APIError(400, f"This model's maximum context length is {max_len} tokens, but you requested "
                                f"{prompt_len + requested} tokens ({prompt_len} in the {prompt_param}, {requested} "
                                f"in the completion).", param=param, code="context_length_exceeded")
        return requested

    def _sampling(self, request, max_tokens: int, **controls) -> SamplingParams:
        """What every endpoint sends the engine: the request's sampling values, and for each it leaves out the
        one GenerationDefaults of this model (settings, then its generation_config.json, then greedy)."""
        defaults = self.manager.model_info.generation

        def given(name: str):
            value = getattr(request, name, None)
            return value if value is not None else getattr(defaults, name)

        return SamplingParams(max_tokens=max_tokens, temperature=given("temperature"), top_p=given("top_p"),
                              frequency_penalty=given("frequency_penalty"),
                              presence_penalty=given("presence_penalty"),
                              repetition_penalty=given("repetition_penalty"),
                              seed=request.seed, stop=tuple(request.stop or ()), **controls)

    async def _events(self, stream: ChoiceStreams, record: RequestRecord,
                      render: Callable[[int, GenerationOutput], Iterable[str]], opening: Iterable[str] = (),
                      closing: Callable[[], Iterable[str]] = lambda: ()) -> AsyncIterator[str]:
        """The SSE events of a stream: `opening` at once (before the first token), `render`'s for each choice's
        output (its text, and its end unless the engine failed), then `closing`'s once every choice ended, then
        `data: [DONE]`. When a choice fails: an error event, the other choices cancelled, no `closing`. A client
        that leaves cancels the generation."""
        status, failed = 200, False
        try:
            for event in opening:
                yield event
            async for index, out in stream:
                record.saw(out, index)
                for event in render(index, out):
                    yield event
                if out.finish_reason == "error":
                    failure = generation_failure(out)
                    status, failed = failure.status, True
                    stream.cancel()  # the other choices of a failed request are of no use
                    yield f"data: {encode_json(failure.body().model_dump())}\n\n"
                    break
            if not failed:
                for event in closing():
                    yield event
            yield "data: [DONE]\n\n"
        finally:
            if not stream.finished and not failed:
                stream.cancel()  # the client went away: free the batch slots now
                record.finish_reason = "cancelled"
                status = 499
            self._log(record, status)

    async def _collect(self, stream: ChoiceStreams, record: RequestRecord, raw_request: Request) -> Response | None:
        """Waits for every choice's whole output. None when they finished; the answer for a client that left
        (499), or raises the failure when a choice failed (the others are cancelled)."""
        async def collect() -> None:
            async for index, out in stream:
                record.saw(out, index)
                if out.finish_reason == "error":
                    stream.cancel()  # the other choices of a failed request are of no use
                    return

        collector = asyncio.ensure_future(collect())
        watcher = asyncio.ensure_future(client_gone(raw_request))
        try:
            await asyncio.wait({collector, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            if not collector.done():
                stream.cancel()  # the client aborted: stop generating for nobody
                collector.cancel()
        if record.finish_reason == "error" and collector.done():
            failure = generation_failure(record.last)
            self._log(record, failure.status)
            raise failure
        if not stream.finished or record.finish_reason == "cancelled":
            record.finish_reason = "cancelled"
            self._log(record, 499)
            return Response(status_code=499)
        self._log(record, 200)
        return None

    def _log(self, record: RequestRecord, status: int) -> None:
        """The request's end: its log line, its completion tokens counted, its span ended."""
        self.metrics.completion_tokens.inc(record.completion_tokens)
        now = time.perf_counter()
        self._end_span(record, status)
        fields = {
            "event": self.log_event,
            "request_id": record.request_id,
            "trace_id": record.span.trace_id,
            "status": status,
            "stream": record.stream,
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "ttft_ms": round((record.first_token_at - record.started) * 1000, 1) if record.first_token_at else None,
            "duration_ms": round((now - record.started) * 1000, 1),
            "finish_reason": record.finish_reason,
        }
        request_log.info(json.dumps(fields), extra={"fields": fields})  # JSON logs take the fields as they are
        if request_log.isEnabledFor(logging.DEBUG):  # texts are user data: only when asked for
            request_log.debug(json.dumps({
                "event": f"{self.log_event}_text", "request_id": record.request_id,
                "prompt": self.manager.tokenizer.decode(record.prompt_ids), "output": "".join(record.output),
            }, ensure_ascii=False))

    @staticmethod
    def _end_span(record: RequestRecord, status: int) -> None:
        span = record.span
        if span is NO_SPAN:
            return
        capture = span.capture_content
        span.end(status=status, response_id=record.response_id, input_tokens=record.prompt_tokens,
                 output_tokens=record.completion_tokens,
                 ttft_s=record.first_token_at - record.started if record.first_token_at else None,
                 started_ns=record.started_ns,
                 choices=[ChoiceEnd(c.finish_reason, c.timings, "".join(c.output) if capture else None)
                          for c in record.choices])


def choice_seed(seed: int | None, index: int) -> int | None:
    """Choice `index`'s seed (choice 0 keeps the request's): a splitmix64 step, so neighbouring choices and
    neighbouring seeds get unrelated generator states. No seed stays no seed (each choice draws freshly)."""
    if seed is None:
        return None
    mask = (1 << 64) - 1
    z = (seed + index * 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)  # 0..2^64-1: torch.Generator.manual_seed takes every such value


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
