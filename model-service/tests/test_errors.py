"""Bad input gets a 400 (or 401/404) in OpenAI's error shape, never a 500 or FastAPI's 422."""

from __future__ import annotations

import httpx
import pytest

GOOD = {"role": "user", "content": "hi"}


def assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    return error


@pytest.mark.parametrize("body, param", [
    ({}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": "hello"}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
    ({"messages": [{"role": "user"}]}, "messages.0"),
    ({"messages": [{"role": "user", "content": 5}]}, None),
    ({"messages": [GOOD], "n": 2}, "n"),
    ({"messages": [GOOD], "max_tokens": -1}, "max_tokens"),
    ({"messages": [GOOD], "max_tokens": "many"}, "max_tokens"),
    ({"messages": [GOOD], "temperature": 5}, "temperature"),
    ({"messages": [GOOD], "stream": "yes please"}, "stream"),
    ({"messages": [GOOD], "stop": ["a", "b", "c", "d", "e"]}, "stop"),
])
def test_invalid_body_is_400(http, body, param):
    error = assert_openai_error(http.post("/v1/chat/completions", json=body), 400, param)
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b"null"])
def test_malformed_json_is_400(http, raw):
    response = http.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert_openai_error(response, 400)


def test_over_long_prompt_names_both_numbers(http):
    long_text = "word " * 1500  # the test server's context is 1024 tokens
    error = assert_openai_error(http.post("/v1/chat/completions",
                                          json={"messages": [{"role": "user", "content": long_text}]}), 400)
    assert "1024" in error["message"] and error["code"] == "context_length_exceeded"


def test_prompt_plus_max_tokens_over_context_names_both_numbers(http):
    error = assert_openai_error(http.post("/v1/chat/completions",
                                          json={"messages": [GOOD], "max_tokens": 1020}), 400, "max_tokens")
    assert "1024" in error["message"] and "1020" in error["message"]


def test_unknown_model_is_404(http):
    error = assert_openai_error(http.post("/v1/chat/completions", json={"model": "gpt-9", "messages": [GOOD]}),
                                404, "model")
    assert error["code"] == "model_not_found"


def test_missing_or_wrong_key_is_401(server):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = httpx.post(server.url + "/v1/chat/completions", json={"messages": [GOOD]}, headers=headers)
        assert_openai_error(response, 401)
        assert httpx.get(server.url + "/v1/models", headers=headers).status_code == 401


def test_health_and_metrics_need_no_key(server):
    assert httpx.get(server.url + "/health").json()["status"] == "ready"
    assert httpx.get(server.url + "/metrics").status_code == 200


def test_unknown_route_is_404_in_error_shape(http):
    assert_openai_error(http.get("/v1/nothing"), 404)


def test_errors_are_counted_in_metrics(http):
    http.post("/v1/chat/completions", json={"messages": []})
    assert 'model_service_requests_total{status="400"}' in http.get("/metrics").text
