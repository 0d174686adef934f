"""One trace per request across both tiers (issue 20): a real gateway and model-service export OTLP to an in-process
receiver. The client's traceparent is continued by the gateway's request span, whose upstream attempts (siblings on
failover) are the parents of the model-service's spans; GenAI attributes equal the response; no text is recorded;
content-filter hits are events; request logs name the trace. With no endpoint set, nothing is exported."""

from __future__ import annotations

import json
import secrets
import socket

import httpx
import pytest

from otlp_receiver import OtlpReceiver
from stack import free_port, start_gateway, start_model_service

MODEL = "smollm2-135m-instruct"
ADMIN_TOKEN = "admin-tracing"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PROMPT = "Name one colour of the rainbow."
TRACED = {"OTEL_EXPORTER_OTLP_ENDPOINT": None, "OTEL_BSP_SCHEDULE_DELAY": "50"}


def traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Both tiers tracing to one receiver; the gateway's first upstream is a closed port (a fault, so failover shows)
    and health probing is off, so that dead replica stays in the rotation."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, never listening: connections are refused
        with OtlpReceiver() as receiver:
            env = {**TRACED, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
            logs = tmp_path_factory.mktemp("logs")
            with start_model_service(free_port(), {**env, "MODEL_SERVICE_LOG_FORMAT": "json"},
                                     log_dir=logs) as service, \
                    start_gateway(free_port(), [dead, service.url], {
                        **env, "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN, "GATEWAY_HEALTH_INTERVAL": "0",
                        "GATEWAY_LOG_FORMAT": "logstash"}, log_dir=logs) as gateway:
                yield receiver, service, gateway, dead


def chat_stream(gateway, parent: str, **extra) -> tuple[int, list[dict]]:
    body = {"model": MODEL, "max_tokens": 5, "temperature": 0.5, "top_p": 0.9, "seed": 3, "stream": True,
            "stream_options": {"include_usage": True}, "messages": [{"role": "user", "content": PROMPT}], **extra}
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=body, timeout=120, headers={
            "Authorization": f"Bearer {gateway.api_key}", "traceparent": parent}) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, []
        return 200, [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]


def whole_trace(receiver, trace_id: str, count: int):
    spans = receiver.wait_for(lambda s: sum(x.trace_id == trace_id for x in s) >= count, what=f"{count} spans")
    return [s for s in spans if s.trace_id == trace_id]


def test_one_trace_through_both_tiers_with_failover_as_sibling_attempts(stack):
    receiver, service, gateway, dead = stack
    # the pool rotates between the dead replica and the real one: within two requests one tries the dead one first
    for _ in range(3):
        trace_id, client_span, parent = traceparent()
        status, chunks = chat_stream(gateway, parent)
        assert status == 200
        # gateway: request, admission, attempts; model-service: request, generation, queue, prefill, decode
        spans = whole_trace(receiver, trace_id, 8)
        attempts = [s for s in spans if s.service == "llm-relay-gateway" and s.kind == "CLIENT"]
        if len(attempts) == 2:
            break
    else:
        pytest.fail("no request tried the dead replica first in 3 tries")
    spans = whole_trace(receiver, trace_id, 9)
    assert sorted((s.service, s.name) for s in spans) == sorted([
        ("llm-relay-gateway", "POST /v1/chat/completions"), ("llm-relay-gateway", "admission"),
        ("llm-relay-gateway", f"chat {MODEL}"), ("llm-relay-gateway", f"chat {MODEL}"),
        ("llm-relay-model-service", "POST /v1/chat/completions"), ("llm-relay-model-service", f"chat {MODEL}"),
        ("llm-relay-model-service", "queue"), ("llm-relay-model-service", "prefill"),
        ("llm-relay-model-service", "decode")])
    by = {(s.service, s.name, s.kind): s for s in spans}
    request = by[("llm-relay-gateway", "POST /v1/chat/completions", "SERVER")]
    assert request.parent_span_id == client_span
    assert request.attributes["http.route"] == "/v1/chat/completions"
    assert request.attributes["http.response.status_code"] == 200
    assert by[("llm-relay-gateway", "admission", "INTERNAL")].parent_span_id == request.span_id
    failed, served = sorted(attempts, key=lambda s: s.attributes["llm_relay.attempt"])
    assert failed.parent_span_id == served.parent_span_id == request.span_id  # siblings
    assert failed.status_code == 2 and failed.attributes["error.type"] == "upstream_fault"
    assert failed.attributes["server.port"] == int(dead.rsplit(":", 1)[1])
    assert served.status_code != 2 and served.attributes["server.port"] == service.port
    assert failed.end_ns <= served.start_ns

    upstream_request = by[("llm-relay-model-service", "POST /v1/chat/completions", "SERVER")]
    assert upstream_request.parent_span_id == served.span_id  # the traceparent the attempt sent
    generation = by[("llm-relay-model-service", f"chat {MODEL}", "INTERNAL")]
    assert generation.parent_span_id == upstream_request.span_id
    for phase in ("queue", "prefill", "decode"):
        assert by[("llm-relay-model-service", phase, "INTERNAL")].parent_span_id == generation.span_id

    usage = chunks[-1]["usage"]
    finish = next(c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0].get(
        "finish_reason"))
    expected = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "llm-relay", "gen_ai.request.model": MODEL,
                "gen_ai.request.max_tokens": 5, "gen_ai.request.temperature": 0.5, "gen_ai.request.top_p": 0.9,
                "gen_ai.response.model": MODEL, "gen_ai.response.id": chunks[0]["id"],
                "gen_ai.response.finish_reasons": [finish], "gen_ai.usage.input_tokens": usage["prompt_tokens"],
                "gen_ai.usage.output_tokens": usage["completion_tokens"]}
    for span in (served, generation):
        assert {k: span.attributes.get(k) for k in expected} == expected, span.service
        assert span.attributes["gen_ai.latency.time_to_first_token"] > 0
    # the gateway's TTFT of the attempt holds the model-service's own
    assert served.attributes["gen_ai.latency.time_to_first_token"] >= generation.attributes[
        "gen_ai.latency.time_to_first_token"]
    # no prompt or completion text in any span
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    values = json.dumps([s.attributes for s in spans] + [s.events for s in spans], ensure_ascii=False)
    assert PROMPT not in values and "gen_ai.input.messages" not in values
    assert text.strip() and text.strip() not in values

    # both tiers' request log lines name the trace (JSON lines on both)
    gateway_lines = [json.loads(line) for line in gateway.log_path.read_text().splitlines() if line.startswith("{")]
    request_id = request.attributes["llm_relay.request_id"]
    mine = [line for line in gateway_lines if line.get("message", "").startswith(f"request {request_id} ")]
    assert [line.get("trace_id") for line in mine] == [trace_id]
    service_lines = [json.loads(line) for line in service.log_path.read_text().splitlines() if line.startswith("{")]
    assert [line["trace_id"] for line in service_lines
            if line.get("event") == "chat_completion" and line.get("request_id") == request_id] == [trace_id]


def test_content_filter_hits_are_events_on_the_gateways_spans(stack):
    receiver, service, gateway, _ = stack
    assert httpx.put(gateway.url + "/admin/content-filter/lists/tracing-prompt", headers=ADMIN, timeout=30, json={
        "words": ["forbidden-word"], "action": "block", "checkPrompt": True}).status_code == 200
    try:
        trace_id, _, parent = traceparent()
        status, _ = chat_stream(gateway, parent, messages=[{"role": "user", "content": "say forbidden-word"}])
        assert status == 400
        spans = whole_trace(receiver, trace_id, 2)
        assert sorted(s.name for s in spans) == ["POST /v1/chat/completions", "admission"]  # no upstream attempt
        admission = next(s for s in spans if s.name == "admission")
        assert admission.events == [("content_filter.hit", {
            "llm_relay.content_filter.list": "tracing-prompt", "llm_relay.content_filter.action": "block",
            "llm_relay.content_filter.side": "prompt", "llm_relay.content_filter.matches": 1})]
        assert admission.attributes["llm_relay.refused_by"] == "PromptFilterStage"
        assert admission.attributes["http.response.status_code"] == 400
    finally:
        httpx.delete(gateway.url + "/admin/content-filter/lists/tracing-prompt", headers=ADMIN, timeout=30)


def test_with_no_endpoint_neither_tier_exports_anything(tmp_path):
    """Even a collector listening on OTLP's default port (4318) gets nothing, and no trace id is logged."""
    try:
        receiver = OtlpReceiver(port=4318)
    except OSError:
        pytest.skip("port 4318 is taken here")
    with receiver, start_model_service(free_port(), {"OTEL_EXPORTER_OTLP_ENDPOINT": "",
                                                     "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
                                                     "MODEL_SERVICE_LOG_FORMAT": "json"},
                                       log_dir=tmp_path) as service, \
            start_gateway(free_port(), [service.url], {"OTEL_EXPORTER_OTLP_ENDPOINT": "",
                                                       "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""},
                          log_dir=tmp_path) as gateway:
        _, _, parent = traceparent()
        status, chunks = chat_stream(gateway, parent)
        assert status == 200 and chunks
        service.stop()
        gateway.stop()
    assert receiver.requests == 0 and receiver.spans == []
    lines = [json.loads(line) for line in service.log_path.read_text().splitlines() if line.startswith("{")]
    request_lines = [line for line in lines if line.get("event") == "chat_completion"]
    assert len(request_lines) == 1 and request_lines[0]["trace_id"] is None
    assert "trace_id=" not in gateway.log_path.read_text()
