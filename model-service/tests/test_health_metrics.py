from __future__ import annotations

import os

import httpx

from stack import REPO, VENV_PYTHON, ManagedProcess, free_port, metric_value, sample_value


def test_health_reports_ready_model(server):
    response = httpx.get(server.url + "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "model": "smollm2-135m-instruct"}


def test_metrics_export_the_serving_series(client, server):
    """The counters move by exactly this request's own numbers (the server is shared: compare before/after)."""
    before = httpx.get(server.url + "/metrics").text
    reply = client.chat.completions.create(model="smollm2-135m-instruct", max_tokens=4,
                                           messages=[{"role": "user", "content": "hi"}])
    text = httpx.get(server.url + "/metrics").text
    for name in ("model_service_requests_total", "model_service_prompt_tokens_total",
                 "model_service_completion_tokens_total", "model_service_time_to_first_token_seconds_count",
                 "model_service_inter_token_latency_seconds_count", "model_service_queue_depth",
                 "model_service_running_batch_size", "model_service_requests_cancelled_total"):
        metric_value(text, name)

    def moved(series: str) -> float:
        return sample_value(text, series) - sample_value(before, series)

    assert moved("model_service_completion_tokens_total") == reply.usage.completion_tokens
    assert moved("model_service_prompt_tokens_total") == reply.usage.prompt_tokens
    assert moved('model_service_requests_total{status="200"}') == 1
    assert moved("model_service_time_to_first_token_seconds_count") == 1


def test_request_latencies_are_exported_under_vllms_names(client, server):
    """vllm:* histograms (model_name label) move by one request each: TTFT, inter-token, end to end, queue,
    prefill, decode, and the finished count by reason; so vLLM's dashboards and alerts read this service."""
    before = httpx.get(server.url + "/metrics").text
    reply = client.chat.completions.create(model="smollm2-135m-instruct", max_tokens=5, temperature=0,
                                           messages=[{"role": "user", "content": "Count: one, two,"}])
    text = httpx.get(server.url + "/metrics").text
    label = '{model_name="smollm2-135m-instruct"}'

    def moved(series: str) -> float:
        return sample_value(text, series) - sample_value(before, series)

    for name in ("vllm:time_to_first_token_seconds", "vllm:e2e_request_latency_seconds",
                 "vllm:request_queue_time_seconds", "vllm:request_prefill_time_seconds",
                 "vllm:request_decode_time_seconds"):
        assert moved(f"{name}_count{label}") == 1, name
    assert moved(f"vllm:inter_token_latency_seconds_count{label}") == reply.usage.completion_tokens - 1
    reason = reply.choices[0].finish_reason
    assert moved(f'vllm:request_success_total{{finished_reason="{reason}",model_name="smollm2-135m-instruct"}}') == 1  # labels sorted
    e2e = moved(f"vllm:e2e_request_latency_seconds_sum{label}")
    parts = sum(moved(f"vllm:request_{part}_time_seconds_sum{label}") for part in ("queue", "prefill", "decode"))
    assert abs(e2e - parts) < 1e-3  # the three parts add up to the whole


def test_lazy_load_reports_503_until_the_first_request_loads_the_model():
    port = free_port()
    # A limit past the model's own context (8192): the context wins, before loading as after.
    env = {**os.environ, "MODEL_SERVICE_PORT": str(port), "MODEL_SERVICE_LOAD": "lazy",
           "MODEL_SERVICE_MAX_MODEL_LEN": "100000"}
    process = ManagedProcess("model-service-lazy", [str(VENV_PYTHON), "-m", "model_service"], env, port,
                             "/openapi.json", REPO)
    with process.wait_healthy(120) as service:  # the HTTP server is up; the model is not loaded
        health = httpx.get(service.url + "/health")
        assert health.status_code == 503 and health.json()["status"] == "not_loaded"
        assert max_model_len(service.url) == 8192  # what the gateway learns before anyone asked
        reply = httpx.post(service.url + "/v1/chat/completions", timeout=180,
                           json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        assert reply.status_code == 200
        assert httpx.get(service.url + "/health").json()["status"] == "ready"
        assert max_model_len(service.url) == 8192


def max_model_len(url: str) -> int:
    (card,) = httpx.get(url + "/v1/models").json()["data"]
    return card["max_model_len"]
