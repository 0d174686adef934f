"""Turns chat completion requests into engine requests and engine output into OpenAI responses."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from typing import AsyncIterator, Callable

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from .choice_streams import ChoiceStreams
from .engine.base import GenerationOutput, GenerationRequest, QueueFullError
from .engine.constraints import Constraint
from .engine.sampling import SamplingParams, TokenLogprob
from .errors import APIError, encode_json
from .generation_defaults import GenerationDefaults
from .logprobs import TokenTexts
from .metrics import ServiceMetrics
from .model_manager import ModelManager
from .protocol import (
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatCompletionStreamChoice,
    ChoiceLogprobs,
    DeltaMessage,
    ResponseMessage,
    UsageInfo,
    completion_id,
)
from .serving_common import (
    STREAM_HEADERS,
    EventStreamResponse,
    OpenAIServing,
    client_gone,
    generation_failure,
)
from .structured_outputs import response_format_constraint
from .tool_calls import ToolPlan, finish_reason_with_calls

@dataclass
class _ChoiceRecord:
    """One choice's output so far."""

    completion_tokens: int = 0
    finish_reason: str | None = None
    output: list[str] = field(default_factory=list, repr=False)
    logprobs: list[TokenLogprob] = field(default_factory=list, repr=False)


@dataclass
class _RequestRecord:
    """What the per-request log line and the metrics need; usage counts every choice, the prompt once."""

    request_id: str
    stream: bool
    prompt_tokens: int
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    finish_reason: str | None = None
    prompt_ids: list[int] = field(default_factory=list, repr=False)
    choices: list[_ChoiceRecord] = field(default_factory=lambda: [_ChoiceRecord()], repr=False)
    last: GenerationOutput | None = None  # the output that finished the request (an error's, if any)

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
            if self.finish_reason != "error":  # one failed choice fails the request
                self.finish_reason = out.finish_reason
                self.last = out


class OpenAIServingChat(OpenAIServing):
    """Chat completions: n choices per request (one engine sequence each), tools, response_format, logprobs."""

    log_event = "chat_completion"

    def __init__(self, manager: ModelManager, metrics: ServiceMetrics) -> None:
        super().__init__(manager, metrics)
        self._defaults: tuple[object, GenerationDefaults] | None = None  # (engine, its defaults)
        self._token_texts: TokenTexts | None = None

    async def create_chat_completion(self, request: ChatCompletionRequest, raw_request: Request) -> Response:
        request_id = raw_request.state.request_id
        await self._check_model(request.model)
        self._check_choices(request)
        tools = ToolPlan.for_request(request, self._model_type())
        prompt_ids = self._render_prompt(request, tools)
        params = self._sampling_params(request, len(prompt_ids))

        def constraint():
            """A fresh grammar state for each choice. With required or a named function the call's grammar
            decides; response_format shapes text answers. Both are built, so either one's bad schema is a 400."""
            tool_constraint = tools.constraint(self.manager)
            format_constraint = response_format_constraint(request.response_format, self.manager)
            return tool_constraint or format_constraint

        stream = self._submit_choices(request_id, prompt_ids, params, request.n, constraint)
        record = _RequestRecord(request_id, request.stream, len(prompt_ids), prompt_ids=prompt_ids,
                                choices=[_ChoiceRecord() for _ in range(request.n)])
        self.metrics.prompt_tokens.inc(len(prompt_ids))
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            return EventStreamResponse(self._stream(stream, record, include_usage, request.logprobs, tools),
                                       headers=STREAM_HEADERS)
        return await self._complete(stream, record, raw_request, request.logprobs, tools)

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
        defaults = self._generation_defaults()
        return SamplingParams(max_tokens=max_tokens,
                              temperature=_given(request.temperature, defaults.temperature),
                              top_p=_given(request.top_p, defaults.top_p),
                              seed=request.seed, stop=tuple(request.stop or ()),
                              **self._sampling_controls(request, defaults))

    def _model_type(self) -> str | None:
        config = getattr(getattr(self.manager.engine, "model", None), "config", None)
        return getattr(config, "model_type", None)

    # -- sampling controls: penalties, logit bias, logprobs, n --------------------------------
    def _generation_defaults(self) -> GenerationDefaults:
        """Settings first, then the model's own generation config (as vLLM does); computed once per engine."""
        engine = self.manager.engine
        if self._defaults is None or self._defaults[0] is not engine:
            config = getattr(getattr(engine, "model", None), "generation_config", None)
            self._defaults = (engine, GenerationDefaults.resolve(config, self.manager.settings))
        return self._defaults[1]

    def _sampling_controls(self, request: ChatCompletionRequest, defaults: GenerationDefaults) -> dict:
        return {
            "frequency_penalty": _given(request.frequency_penalty, defaults.frequency_penalty),
            "presence_penalty": _given(request.presence_penalty, defaults.presence_penalty),
            "repetition_penalty": _given(request.repetition_penalty, defaults.repetition_penalty),
            "logit_bias": self._logit_bias(request.logit_bias),
            "logprobs": bool(request.logprobs),
            "top_logprobs": request.top_logprobs or 0,
        }

    def _logit_bias(self, bias: dict[str, float] | None) -> tuple[tuple[int, float], ...]:
        """Token ids checked against the vocabulary (the protocol checked their form and the values)."""
        if not bias:
            return ()
        vocab = self._vocab_size()
        outside = [key for key in bias if int(key) >= vocab]
        if outside:
            raise APIError(400, f"logit_bias: token ids {', '.join(outside[:5])} are outside the vocabulary "
                                f"(0..{vocab - 1})", param="logit_bias", code="invalid_logit_bias")
        return tuple(sorted((int(key), float(value)) for key, value in bias.items()))

    def _vocab_size(self) -> int:
        """Ids the tokenizer knows and the model scores (a model may pad its output layer past the tokenizer)."""
        size = len(self.manager.tokenizer)
        config = getattr(getattr(self.manager.engine, "model", None), "config", None)
        scored = getattr(config, "vocab_size", None) or getattr(config, "padded_vocab_size", None)
        return min(size, scored) if isinstance(scored, int) else size

    def _check_choices(self, request: ChatCompletionRequest) -> None:
        limit = self.manager.settings.max_n
        if request.n > limit:
            raise APIError(400, f"n: at most {limit} choices per request on this server, got {request.n}",
                           param="n", code="invalid_n")

    def _submit_choices(self, request_id: str, prompt_ids: list[int], params: SamplingParams, n: int,
                        constraint: Callable[[], Constraint | None]) -> ChoiceStreams:
        """One engine sequence per choice, sharing the prompt; each choice with its own seed, derived from the
        request's, so choices differ under sampling and the whole response repeats with the same seed.
        All or nothing: when the queue cannot take every choice, none stays queued."""
        streams = []
        try:
            for index in range(n):
                choice_params = params if index == 0 else replace(params, seed=_choice_seed(params.seed, index))
                choice_id = request_id if n == 1 else f"{request_id}-{index}"
                streams.append(self.manager.engine.submit(
                    GenerationRequest(choice_id, prompt_ids, choice_params, constraint())))
        except QueueFullError as exc:
            for stream in streams:
                stream.cancel()
            raise APIError(503, f"the server is busy ({exc.waiting} requests waiting); retry later",
                           code="queue_full", headers={"Retry-After": str(exc.retry_after_s)}) from None
        return ChoiceStreams(streams)

    def _logprobs(self, logprobs: list[TokenLogprob]) -> ChoiceLogprobs:
        if self._token_texts is None or self._token_texts.tokenizer is not self.manager.tokenizer:
            self._token_texts = TokenTexts(self.manager.tokenizer)
        return self._token_texts.content(logprobs)

    # -- engine → response ---------------------------------------------------------------
    async def _stream(self, stream: ChoiceStreams, record: _RequestRecord, include_usage: bool,
                      logprobs: bool, tools: ToolPlan) -> AsyncIterator[str]:
        """Each chunk carries one choice (its `index`) and, when asked, the logprobs of the tokens it completes."""
        chunk_id, created, model = completion_id(), int(time.time()), self.manager.model_name

        def chunk(index: int, delta: DeltaMessage, finish_reason: str | None = None,
                  tokens: list[TokenLogprob] | None = None) -> str:
            body = ChatCompletionChunk(id=chunk_id, created=created, model=model, choices=[
                ChatCompletionStreamChoice(index=index, delta=delta, finish_reason=finish_reason,
                                           logprobs=self._logprobs(tokens) if logprobs and tokens else None)])
            return f"data: {body.model_dump_json(exclude_none=True)}\n\n"

        status, failed = 200, False
        calls = [tools.parser() if tools.parses_output else None for _ in range(len(stream))]  # one per choice
        # logprobs wait for the next chunk of their choice (a tool-call parser may hold text back)
        pending: list[list[TokenLogprob]] = [[] for _ in range(len(stream))]

        def taken(index: int) -> list[TokenLogprob]:
            tokens, pending[index] = pending[index], []
            return tokens

        try:
            for index in range(len(stream)):
                yield chunk(index, DeltaMessage(role="assistant", content=""))
            async for index, out in stream:
                record.saw(out, index)
                pending[index].extend(out.logprobs or ())
                parser = calls[index]
                if out.text:
                    for delta in parser.feed(out.text) if parser else [DeltaMessage(content=out.text)]:
                        yield chunk(index, delta, tokens=taken(index))
                if out.finish_reason == "error":
                    failure = generation_failure(out)
                    status, failed = failure.status, True
                    stream.cancel()  # the other choices of a failed request are of no use
                    yield f"data: {encode_json(failure.body().model_dump())}\n\n"
                    break
                if out.finish_reason in ("stop", "length"):
                    for delta in parser.finish() if parser else ():
                        yield chunk(index, delta, tokens=taken(index))
                    reason = finish_reason_with_calls(out.finish_reason, bool(parser and parser.called))
                    yield chunk(index, DeltaMessage(), reason, tokens=taken(index))
            if include_usage and not failed:
                usage = ChatCompletionChunk(id=chunk_id, created=created, model=model, choices=[],
                                            usage=self._usage(record))
                yield f"data: {usage.model_dump_json(exclude_none=True)}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            if not stream.finished and not failed:
                stream.cancel()  # the client went away: free the batch slots now
                record.finish_reason = "cancelled"
                status = 499
            self._log(record, status)

    async def _complete(self, stream: ChoiceStreams, record: _RequestRecord, raw_request: Request,
                        logprobs: bool, tools: ToolPlan) -> Response:
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
        choices = []
        for index, choice in enumerate(record.choices):
            content, calls = "".join(choice.output), []
            if tools.parses_output:
                content, calls = tools.parse(content)
            choices.append(ChatCompletionChoice(
                index=index, message=ResponseMessage(content=content, tool_calls=calls or None),
                logprobs=self._logprobs(choice.logprobs) if logprobs else None,
                finish_reason=finish_reason_with_calls(choice.finish_reason, bool(calls))))
        body = ChatCompletionResponse(model=self.manager.model_name, choices=choices, usage=self._usage(record))
        return JSONResponse(body.model_dump())

    @staticmethod
    def _usage(record: _RequestRecord) -> UsageInfo:
        return UsageInfo(prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens,
                         total_tokens=record.prompt_tokens + record.completion_tokens)

def _given(value: float | None, default: float) -> float:
    return value if value is not None else default


def _choice_seed(seed: int | None, index: int) -> int | None:
    """Choice `index`'s seed (choice 0 keeps the request's): a splitmix64 step, so neighbouring choices and
    neighbouring seeds get unrelated generator states. No seed stays no seed (each choice draws freshly)."""
    if seed is None:
        return None
    mask = (1 << 64) - 1
    z = (seed + index * 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)  # 0..2^64-1: torch.Generator.manual_seed takes every such value
