"""OpenTelemetry traces of the model-service: one span per generation request (GenAI semantic conventions), with
its queue wait, prefill and decode as child spans, under the HTTP server span of FastAPI's instrumentation, which
continues the caller's W3C `traceparent` (the gateway's upstream attempt).

Off unless OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (OTLP over HTTP/protobuf, the
exporter reads the standard OTEL_* variables itself). Off means no SDK objects at all: every request gets the one
shared no-op span, so nothing is exported and nothing is measured for it. Prompt and completion texts are recorded
only when OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .engine.base import RequestTimings

log = logging.getLogger(__name__)

SERVICE_NAME = "llm-relay-model-service"
PROVIDER_NAME = "llm-relay"  # gen_ai.provider.name: a self-hosted OpenAI-compatible service
# Scrapes and probes are not requests anyone follows.
EXCLUDED_URLS = "/metrics,/health"


def _on(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ChoiceEnd:
    """What one choice of a finished request contributes to its span."""
    finish_reason: str | None
    timings: "RequestTimings | None"
    text: str | None = None  # the choice's output, only when content capture is on


class GenerationSpan:
    """One generation request's span. This base class is the no-op one every request gets when tracing is off."""

    trace_id: str | None = None  # hex, for the request log line
    capture_content = False  # whether the output texts are wanted at the end

    def end(self, *, status: int, response_id: str | None, input_tokens: int, output_tokens: int,
            ttft_s: float | None, started_ns: int, choices: Sequence[ChoiceEnd]) -> None: ...


NO_SPAN = GenerationSpan()


class _RecordingGenerationSpan(GenerationSpan):
    def __init__(self, tracer: trace.Tracer, span: trace.Span, capture_content: bool) -> None:
        self._tracer = tracer
        self._span = span
        self.capture_content = capture_content
        self.trace_id = format(span.get_span_context().trace_id, "032x")

    def end(self, *, status: int, response_id: str | None, input_tokens: int, output_tokens: int,
            ttft_s: float | None, started_ns: int, choices: Sequence[ChoiceEnd]) -> None:
        span = self._span
        reasons = [c.finish_reason for c in choices if c.finish_reason]
        attributes = {
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.response.finish_reasons": reasons,
            "http.response.status_code": status,
        }
        if response_id:
            attributes["gen_ai.response.id"] = response_id
        if ttft_s is not None:
            attributes["gen_ai.latency.time_to_first_token"] = ttft_s
        first = next((c.timings for c in choices if c.timings is not None), None)
        if first is not None:  # vLLM's names for the same parts (SpanAttributes.GEN_AI_LATENCY_*)
            attributes.update({"gen_ai.latency.time_in_queue": first.queue,
                               "gen_ai.latency.time_in_model_prefill": first.prefill,
                               "gen_ai.latency.time_in_model_decode": first.decode,
                               "gen_ai.latency.e2e": first.e2e})
        if self.capture_content:
            attributes["gen_ai.output.messages"] = json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": c.text or ""}],
                  "finish_reason": c.finish_reason} for c in choices], ensure_ascii=False)
        span.set_attributes(attributes)
        context = trace.set_span_in_context(span)
        for index, choice in enumerate(choices):
            if choice.timings is not None:
                self._phases(context, index if len(choices) > 1 else None, started_ns, choice.timings)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
            span.set_attribute("error.type", str(status))
        elif status == 499:
            span.set_attribute("error.type", "cancelled")
        span.end()

    def _phases(self, context, choice: int | None, started_ns: int, timings: "RequestTimings") -> None:
        """Queue wait, prefill and decode as child spans, laid end to end from the request's start (the engine
        measured their lengths; a phase the request never reached is left out)."""
        attributes = {"gen_ai.choice.index": choice} if choice is not None else {}
        start = started_ns
        for name, seconds, reached in (("queue", timings.queue, True), ("prefill", timings.prefill, timings.prefill > 0),
                                       ("decode", timings.decode, timings.decode > 0)):
            end = start + int(seconds * 1e9)
            if reached:
                self._tracer.start_span(name, context=context, start_time=start, attributes=attributes).end(end_time=end)
            start = end


class Tracing:
    """The model-service's tracer: the SDK with an OTLP exporter when an endpoint is configured, else nothing."""

    def __init__(self, environ: Mapping[str, str] | None = None, exporter=None) -> None:
        env = os.environ if environ is None else environ
        self.enabled = exporter is not None or bool(
            env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
        if _on(env.get("OTEL_SDK_DISABLED")) or env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
            self.enabled = False
        self.capture_content = _on(env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"))
        self.provider = None
        self._tracer: trace.Tracer | None = None
        if not self.enabled:
            return
        # the SDK is imported only when it is used
        from opentelemetry.sdk.resources import OTELResourceDetector, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            exporter = OTLPSpanExporter()
        # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default name
        resource = Resource.create({"service.name": SERVICE_NAME}).merge(OTELResourceDetector().detect())
        if env.get("OTEL_SERVICE_NAME"):
            resource = resource.merge(Resource({"service.name": env["OTEL_SERVICE_NAME"]}))
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self.provider.get_tracer("model_service")
        log.info("tracing on: spans go to %s", env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                 or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "the given exporter")

    def instrument(self, app: "FastAPI") -> None:
        """The HTTP server span for every route but scrapes and probes, continuing an incoming traceparent."""
        if not self.enabled:
            return
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.metrics import NoOpMeterProvider

        # the per-message receive/send spans of a stream would be one span per token: left out
        FastAPIInstrumentor.instrument_app(app, tracer_provider=self.provider, meter_provider=NoOpMeterProvider(),
                                           excluded_urls=EXCLUDED_URLS, exclude_spans=["receive", "send"])

    def start_generation(self, operation: str, model: str, request_id: str, *, requested_model: str | None,
                         max_tokens: int, temperature: float, top_p: float, n: int,
                         messages: Callable[[], object] | None = None, start_ns: int | None = None) -> GenerationSpan:
        """The span of one generation request (`operation`: chat | text_completion), a child of the current
        span (the HTTP server span). `messages` gives the input to record when content capture is on."""
        if self._tracer is None:
            return NO_SPAN
        attributes = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": PROVIDER_NAME,
            "gen_ai.request.model": requested_model or model,
            "gen_ai.response.model": model,
            "gen_ai.request.max_tokens": max_tokens,
            "gen_ai.request.temperature": temperature,
            "gen_ai.request.top_p": top_p,
            "llm_relay.request_id": request_id,
        }
        if n != 1:
            attributes["gen_ai.request.choice.count"] = n
        if self.capture_content and messages is not None:
            attributes["gen_ai.input.messages"] = json.dumps(messages(), ensure_ascii=False, default=str)
        span = self._tracer.start_span(f"{operation} {model}", kind=SpanKind.INTERNAL, attributes=attributes,
                                       start_time=start_ns)
        return _RecordingGenerationSpan(self._tracer, span, self.capture_content)

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()  # flushes what is still batched
