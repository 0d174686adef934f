"""Turns chat completion requests into engine requests and engine output into OpenAI responses."""

from __future__ import annotations

import time
from typing import AsyncIterator, Iterator

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from ...engine.base import GenerationOutput
from ...engine.grammar import GrammarConstraint
from ...engine.sampling import SamplingParams, TokenLogprob
from ...errors import APIError
from ...metrics import ServiceMetrics
from ...model_manager import ModelManager
from ...tracing import Tracing
from ..common.choice_streams import ChoiceStreams
from ..common.serving import STREAM_HEADERS, EventStreamResponse, OpenAIServing, RequestRecord
from .logprobs import TokenTexts
from .protocol import (
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatCompletionStreamChoice,
    ChoiceLogprobs,
    DeltaMessage,
    ResponseMessage,
    completion_id,
)
from .structured_outputs import response_format_constraint
from .tool_calls import ToolPlan, finish_reason_with_calls

class OpenAIServingChat(OpenAIServing):
    """Chat completions: n choices per request (one engine sequence each), tools, response_format, logprobs."""

    log_event = "chat_completion"
    operation = "chat"

    def __init__(self, manager: ModelManager, metrics: ServiceMetrics, tracing: Tracing | None = None) -> None:
        super().__init__(manager, metrics, tracing)
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
            decides; response_format shapes text answers. Both are built, so either one's bad schema is a 400.
            A grammar finishes its document within the request's budget (GrammarConstraint.within)."""
            tool_constraint = tools.constraint(self.manager, request.max_array_items)
            format_constraint = response_format_constraint(request.response_format, self.manager,
                                                           request.max_array_items)
            chosen = tool_constraint or format_constraint
            return chosen.within(params.max_tokens) if isinstance(chosen, GrammarConstraint) else chosen

        self._check_budget_fits(constraint(), params.max_tokens,
                                "max_completion_tokens" if request.max_completion_tokens else "max_tokens")
        stream, record = self._submit(
            request_id, prompt_ids, params, request.stream, request.n, constraint, request.cache_salt,
            response_id=completion_id(), requested_model=request.model,
            content=lambda: [m.model_dump(exclude_none=True) for m in request.messages])
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            return EventStreamResponse(self._stream(stream, record, include_usage, request.logprobs, tools),
                                       headers=STREAM_HEADERS)
        return await self._complete(stream, record, raw_request, request.logprobs, tools)

    @staticmethod
    def _check_budget_fits(probe, max_tokens: int, param: str) -> None:
        """A structured answer that cannot be finished within the budget is refused before it is generated,
        instead of being cut into JSON that does not parse."""
        if not isinstance(probe, GrammarConstraint) or probe.smallest is None:
            return
        if probe.smallest > max_tokens:  # `within` measured it
            raise APIError(400, f"{param}: the shortest answer the schema allows takes {probe.smallest} tokens, "
                                f"more than the {max_tokens} asked for", param=param, code="max_tokens_too_small")

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
        return self._sampling(request, max_tokens, logit_bias=self._logit_bias(request.logit_bias),
                              logprobs=bool(request.logprobs), top_logprobs=request.top_logprobs or 0)

    def _model_type(self) -> str | None:
        return self.manager.model_info.model_type

    # -- sampling controls: logit bias, logprobs, n --------------------------------------------
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
        scored = self.manager.model_info.vocab_size
        return min(size, scored) if scored is not None else size

    def _check_choices(self, request: ChatCompletionRequest) -> None:
        limit = self.manager.settings.max_n
        if request.n > limit:
            raise APIError(400, f"n: at most {limit} choices per request on this server, got {request.n}",
                           param="n", code="invalid_n")

    def _logprobs(self, logprobs: list[TokenLogprob]) -> ChoiceLogprobs:
        if self._token_texts is None or self._token_texts.tokenizer is not self.manager.tokenizer:
            self._token_texts = TokenTexts(self.manager.tokenizer)
        return self._token_texts.content(logprobs)

    # -- engine → response ---------------------------------------------------------------
    def _stream(self, stream: ChoiceStreams, record: RequestRecord, include_usage: bool,
                logprobs: bool, tools: ToolPlan) -> AsyncIterator[str]:
        """Each chunk carries one choice (its `index`) and, when asked, the logprobs of the tokens it completes."""
        chunk_id, created, model = record.response_id, int(time.time()), self.manager.model_name

        def chunk(index: int, delta: DeltaMessage, finish_reason: str | None = None,
                  tokens: list[TokenLogprob] | None = None) -> str:
            body = ChatCompletionChunk(id=chunk_id, created=created, model=model, choices=[
                ChatCompletionStreamChoice(index=index, delta=delta, finish_reason=finish_reason,
                                           logprobs=self._logprobs(tokens) if logprobs and tokens else None)])
            return f"data: {body.model_dump_json(exclude_none=True)}\n\n"

        calls = [tools.parser() if tools.parses_output else None for _ in range(len(stream))]  # one per choice
        # logprobs wait for the next chunk of their choice (a tool-call parser may hold text back)
        pending: list[list[TokenLogprob]] = [[] for _ in range(len(stream))]

        def taken(index: int) -> list[TokenLogprob]:
            tokens, pending[index] = pending[index], []
            return tokens

        def render(index: int, out: GenerationOutput) -> Iterator[str]:
            pending[index].extend(out.logprobs or ())
            parser = calls[index]
            if out.text:
                for delta in parser.feed(out.text) if parser else [DeltaMessage(content=out.text)]:
                    yield chunk(index, delta, tokens=taken(index))
            if out.finish_reason in ("stop", "length"):
                for delta in parser.finish() if parser else ():
                    yield chunk(index, delta, tokens=taken(index))
                reason = finish_reason_with_calls(out.finish_reason, bool(parser and parser.called))
                yield chunk(index, DeltaMessage(), reason, tokens=taken(index))

        def usage() -> list[str]:
            if not include_usage:
                return []
            body = ChatCompletionChunk(id=chunk_id, created=created, model=model, choices=[], usage=record.usage())
            return [f"data: {body.model_dump_json(exclude_none=True)}\n\n"]

        opening = [chunk(index, DeltaMessage(role="assistant", content="")) for index in range(len(stream))]
        return self._events(stream, record, render, opening, usage)

    async def _complete(self, stream: ChoiceStreams, record: RequestRecord, raw_request: Request,
                        logprobs: bool, tools: ToolPlan) -> Response:
        cancelled = await self._collect(stream, record, raw_request)
        if cancelled is not None:
            return cancelled
        choices = []
        for index, choice in enumerate(record.choices):
            content, calls = "".join(choice.output), []
            if tools.parses_output:
                content, calls = tools.parse(content)
            choices.append(ChatCompletionChoice(
                index=index, message=ResponseMessage(content=content, tool_calls=calls or None),
                logprobs=self._logprobs(choice.logprobs) if logprobs else None,
                finish_reason=finish_reason_with_calls(choice.finish_reason, bool(calls))))
        body = ChatCompletionResponse(id=record.response_id, model=self.manager.model_name, choices=choices,
                                      usage=record.usage())
        return JSONResponse(body.model_dump())


def _given(value: float | None, default: float) -> float:
    return value if value is not None else default
