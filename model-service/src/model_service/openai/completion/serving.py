"""Turns legacy text completion requests (/v1/completions) into engine requests and engine output into
`text_completion` objects. The prompt is tokenized as sent: no chat template."""

from __future__ import annotations

import time
from typing import AsyncIterator

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from ...engine.base import GenerationOutput
from ...engine.sampling import SamplingParams
from ...errors import APIError
from ..common.choice_streams import ChoiceStreams
from ..common.serving import STREAM_HEADERS, EventStreamResponse, OpenAIServing, RequestRecord
from .protocol import CompletionChoice, CompletionRequest, CompletionResponse, text_completion_id


class OpenAIServingCompletion(OpenAIServing):
    log_event = "text_completion"

    async def create_completion(self, request: CompletionRequest, raw_request: Request) -> Response:
        await self._check_model(request.model)
        prompt_ids = self._prompt_ids(request.prompt)
        params = self._sampling_params(request, len(prompt_ids))
        stream, record = self._submit(raw_request.state.request_id, prompt_ids, params, request.stream,
                                      cache_salt=request.cache_salt, response_id=text_completion_id(),
                                      requested_model=request.model, content=lambda: request.prompt)
        echo = self.manager.tokenizer.decode(prompt_ids) if request.echo else ""
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            return EventStreamResponse(self._stream(stream, record, echo, include_usage), headers=STREAM_HEADERS)
        cancelled = await self._collect(stream, record, raw_request)
        if cancelled is not None:
            return cancelled
        body = CompletionResponse(id=record.response_id, model=self.manager.model_name, choices=[CompletionChoice(
            text=echo + "".join(record.output), finish_reason=record.finish_reason)], usage=record.usage())
        return JSONResponse(body.model_dump())

    # -- request → engine ---------------------------------------------------------------
    def _prompt_ids(self, prompt: str | list[int]) -> list[int]:
        tokenizer = self.manager.tokenizer
        if isinstance(prompt, str):
            ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
            if not ids:
                raise APIError(400, "prompt: the prompt is empty", param="prompt", code="invalid_request")
            return ids
        vocab = len(tokenizer)
        outside = next((token for token in prompt if token >= vocab), None)
        if outside is not None:
            raise APIError(400, f"prompt: token id {outside} is outside the model's vocabulary (0..{vocab - 1})",
                           param="prompt", code="invalid_request")
        return list(prompt)

    def _sampling_params(self, request: CompletionRequest, prompt_len: int) -> SamplingParams:
        # OpenAI documents 16 as this endpoint's max_tokens default (vLLM follows it); chat's is the context
        max_tokens = self._max_tokens(prompt_len, request.max_tokens, "max_tokens", "prompt",
                                      default=self.manager.settings.completions_default_max_tokens)
        return self._sampling(request, max_tokens)

    # -- engine → response ---------------------------------------------------------------
    def _stream(self, stream: ChoiceStreams, record: RequestRecord, echo: str,
                include_usage: bool) -> AsyncIterator[str]:
        chunk_id, created, model = record.response_id, int(time.time()), self.manager.model_name

        def chunk(choices: list[CompletionChoice], usage=None) -> str:
            body = CompletionResponse(id=chunk_id, created=created, model=model, choices=choices, usage=usage)
            return f"data: {body.model_dump_json()}\n\n"

        def render(index: int, out: GenerationOutput) -> list[str]:
            finish_reason = out.finish_reason if out.finish_reason in ("stop", "length") else None
            if out.text or finish_reason:
                return [chunk([CompletionChoice(index=index, text=out.text, finish_reason=finish_reason)])]
            return []

        def usage() -> list[str]:
            return [chunk([], usage=record.usage())] if include_usage else []

        # with echo the prompt comes first, as OpenAI sends it
        opening = [chunk([CompletionChoice(text=echo)])] if echo else []
        return self._events(stream, record, render, opening, usage)
