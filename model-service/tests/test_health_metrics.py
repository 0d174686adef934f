from __future__ import annotations

import httpx

from conftest import metric_value


def test_health_reports_ready_model(server):
    response = httpx.get(server.url + "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "model": "smollm2-135m-instruct"}


def test_metrics_export_the_serving_series(client, server):
    client.chat.completions.create(model="smollm2-135m-instruct", max_tokens=4,
                                   messages=[{"role": "user", "content": "hi"}])
    text = httpx.get(server.url + "/metrics").text
    for name in ("model_service_requests_total", "model_service_prompt_tokens_total",
                 "model_service_completion_tokens_total", "model_service_time_to_first_token_seconds_count",
                 "model_service_inter_token_latency_seconds_count", "model_service_queue_depth",
                 "model_service_running_batch_size", "model_service_requests_cancelled_total"):
        metric_value(text, name)
    assert metric_value(text, "model_service_completion_tokens_total") >= 4
