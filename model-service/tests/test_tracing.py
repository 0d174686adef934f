"""Traces of the model-service: a real service exporting OTLP to an in-process receiver, and the Tracing class alone
(off without an endpoint, content only when opted in, phases laid end to end)."""

from __future__ import annotations

import json
import secrets

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from model_service.engine.base import RequestTimings
from model_service.tracing import NO_SPAN, ChoiceEnd, Tracing
from otlp_receiver import OtlpReceiver
from stack import free_port, start_model_service

MODEL = "smollm2-135m-instruct"


def test_a_request_is_one_trace_continuing_the_callers_traceparent_with_genai_attributes():
    """The caller's traceparent is the parent of the HTTP server span, which holds the generation span, which holds
    queue, prefill and decode; the GenAI attributes equal what the response says; no text is recorded; the JSON
    request log line names the trace."""
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    with OtlpReceiver() as receiver, start_model_service(free_port(), {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50",
            "MODEL_SERVICE_LOG_FORMAT": "json", "MODEL_SERVICE_MAX_MODEL_LEN": "1024"}, timeout_s=180) as server:
        response = httpx.post(server.url + "/v1/chat/completions", timeout=120,
                              headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
                              json={"model": MODEL, "max_tokens": 5, "temperature": 0.5, "top_p": 0.9, "seed": 1,
                                    "messages": [{"role": "user", "content": "Name a colour."}]})
        assert response.status_code == 200
        body = response.json()
        spans = receiver.wait_for(lambda s: sum(x.trace_id == trace_id for x in s) >= 5, what="5 spans")
        # a stream's response id is its chunks' id
        with httpx.stream("POST", server.url + "/v1/chat/completions", timeout=120,
                          json={"model": MODEL, "max_tokens": 3, "stream": True,
                                "messages": [{"role": "user", "content": "Hi"}]}) as stream:
            chunks = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: {")]
        streamed = receiver.wait_for(lambda s: any(x.attributes.get("gen_ai.response.id") == chunks[0]["id"]
                                                   for x in s), what="the stream's span")
        server.stop()
        log_lines = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]

    mine = [s for s in spans if s.trace_id == trace_id]
    assert sorted(s.name for s in mine) == sorted(["POST /v1/chat/completions", f"chat {MODEL}",
                                                   "queue", "prefill", "decode"])
    assert {s.service for s in mine} == {"llm-relay-model-service"}
    by_name = {s.name: s for s in mine}
    server_span, generation = by_name["POST /v1/chat/completions"], by_name[f"chat {MODEL}"]
    assert server_span.kind == "SERVER" and server_span.parent_span_id == parent_id
    assert generation.parent_span_id == server_span.span_id
    for phase in ("queue", "prefill", "decode"):
        assert by_name[phase].parent_span_id == generation.span_id
    assert by_name["queue"].end_ns == by_name["prefill"].start_ns
    assert by_name["prefill"].end_ns == by_name["decode"].start_ns
    assert generation.start_ns <= by_name["queue"].start_ns and by_name["decode"].end_ns <= server_span.end_ns
    attributes = generation.attributes
    assert {k: attributes[k] for k in (
        "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
        "gen_ai.request.max_tokens", "gen_ai.request.temperature", "gen_ai.request.top_p", "gen_ai.response.id",
        "gen_ai.response.finish_reasons", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")} == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "llm-relay", "gen_ai.request.model": MODEL,
        "gen_ai.response.model": MODEL, "gen_ai.request.max_tokens": 5, "gen_ai.request.temperature": 0.5,
        "gen_ai.request.top_p": 0.9, "gen_ai.response.id": body["id"],
        "gen_ai.response.finish_reasons": [body["choices"][0]["finish_reason"]],
        "gen_ai.usage.input_tokens": body["usage"]["prompt_tokens"],
        "gen_ai.usage.output_tokens": body["usage"]["completion_tokens"]}
    assert 0 < attributes["gen_ai.latency.time_to_first_token"] < attributes["gen_ai.latency.e2e"] + 0.05
    assert not [k for s in mine for k in s.attributes if k in ("gen_ai.input.messages", "gen_ai.output.messages")]

    stream_span = next(s for s in streamed if s.attributes.get("gen_ai.response.id") == chunks[0]["id"])
    assert stream_span.attributes["gen_ai.usage.output_tokens"] == 3  # a new trace: no traceparent was sent
    assert stream_span.trace_id != trace_id

    request_lines = [line for line in log_lines if line.get("event") == "chat_completion"]
    assert [line["trace_id"] for line in request_lines] == [trace_id, stream_span.trace_id]
    assert all(line["logger"] == "model_service.requests" and line["level"] == "INFO" for line in request_lines)


def test_a_stream_the_client_leaves_is_a_whole_trace_whose_generation_says_cancelled():
    """A user's stop is the common way a stream ends early: its trace keeps its root (the HTTP server span is
    exported, ending after the generation) and the generation span says why it ended."""
    trace_id = secrets.token_hex(16)
    with OtlpReceiver() as receiver, start_model_service(free_port(), {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"}, timeout_s=180) as server:
        with httpx.stream("POST", server.url + "/v1/chat/completions", timeout=120,
                          headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
                          json={"model": MODEL, "max_tokens": 200, "stream": True,
                                "messages": [{"role": "user", "content": "Tell me a long story."}]}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: {") and '"content"' in line and '"content":""' not in line:
                    break  # a token arrived: leave
        spans = receiver.wait_for(lambda s: {"POST /v1/chat/completions", f"chat {MODEL}"} <= {
            x.name for x in s if x.trace_id == trace_id}, what="the cancelled request's spans")
    mine = {s.name: s for s in spans if s.trace_id == trace_id}
    server_span, generation = mine["POST /v1/chat/completions"], mine[f"chat {MODEL}"]
    assert generation.parent_span_id == server_span.span_id
    assert generation.attributes["error.type"] == "cancelled"
    assert generation.attributes["http.response.status_code"] == 499
    assert generation.attributes["gen_ai.usage.output_tokens"] >= 1  # it was cut after its first token
    assert server_span.end_ns >= generation.end_ns


def test_without_an_endpoint_tracing_is_off_and_every_request_gets_the_no_op_span():
    tracing = Tracing(environ={"OTEL_SERVICE_NAME": "x"})
    assert not tracing.enabled and tracing.provider is None
    span = tracing.start_generation("chat", MODEL, "r1", requested_model=None, max_tokens=4, temperature=1.0,
                                    top_p=1.0, n=1)
    assert span is NO_SPAN and span.trace_id is None
    # the standard switches turn it off even with an endpoint
    assert not Tracing(environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"}).enabled
    assert not Tracing(environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "none"}).enabled
    assert Tracing(environ={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x/v1/traces"}).enabled


def _one_request(environ: dict, n: int = 1) -> list:
    exporter = InMemorySpanExporter()
    tracing = Tracing(environ=environ, exporter=exporter)
    span = tracing.start_generation("chat", MODEL, "r1", requested_model="alias", max_tokens=8, temperature=0.0,
                                    top_p=1.0, n=n, messages=lambda: [{"role": "user", "content": "秘密 prompt"}])
    timings = RequestTimings(queue=0.25, prefill=0.5, decode=1.0, e2e=1.75, finish_reason="length")
    span.end(status=200, response_id="chatcmpl-1", input_tokens=7, output_tokens=8, ttft_s=0.75,
             started_ns=1_000_000_000, choices=[ChoiceEnd("length", timings, "secret answer")] * n)
    tracing.shutdown()
    return exporter.get_finished_spans()


def test_texts_are_recorded_only_when_an_operator_opts_in():
    plain = {s.name: s for s in _one_request({})}[f"chat {MODEL}"]
    assert "gen_ai.input.messages" not in plain.attributes and "gen_ai.output.messages" not in plain.attributes
    assert plain.attributes["gen_ai.request.model"] == "alias" and plain.attributes["gen_ai.response.model"] == MODEL
    opted = {s.name: s for s in _one_request({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"})}
    attributes = opted[f"chat {MODEL}"].attributes
    assert json.loads(attributes["gen_ai.input.messages"]) == [{"role": "user", "content": "秘密 prompt"}]
    assert json.loads(attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "secret answer"}], "finish_reason": "length"}]


def test_phases_are_laid_end_to_end_from_the_requests_start_one_set_per_choice():
    spans = _one_request({}, n=2)
    phases = sorted((s.attributes["gen_ai.choice.index"], s.start_time, s.name, s.end_time)
                    for s in spans if s.name in ("queue", "prefill", "decode"))
    one = [(1_000_000_000, "queue", 1_250_000_000), (1_250_000_000, "prefill", 1_750_000_000),
           (1_750_000_000, "decode", 2_750_000_000)]
    assert phases == [(0, *p) for p in one] + [(1, *p) for p in one]
    generation = next(s for s in spans if s.name == f"chat {MODEL}")
    assert generation.attributes["gen_ai.latency.time_in_queue"] == 0.25
    assert generation.attributes["gen_ai.request.choice.count"] == 2
    assert all(s.parent.span_id == generation.context.span_id for s in spans if s.name != generation.name)
