"""Bad input gets a 400 (or 401/404) in OpenAI's error shape, never a 500 or FastAPI's 422."""

from __future__ import annotations

import json

import httpx
import pytest

from stack import sample_value

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
    ({"messages": [GOOD], "n": 5}, "n"),  # over MODEL_SERVICE_MAX_N (4)
    ({"messages": [GOOD], "max_tokens": -1}, "max_tokens"),
    ({"messages": [GOOD], "max_tokens": "many"}, "max_tokens"),
    ({"messages": [GOOD], "temperature": 5}, "temperature"),
    ({"messages": [GOOD], "stream": "yes please"}, "stream"),
    ({"messages": [GOOD], "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    # Numbers at and past the edges of their ranges (seed is OpenAI's int64).
    ({"messages": [GOOD], "seed": -9223372036854775809}, "seed"),
    ({"messages": [GOOD], "seed": 9223372036854775808}, "seed"),
    ({"messages": [GOOD], "seed": 18446744073709551616}, "seed"),
    ({"messages": [GOOD], "seed": 1e20}, "seed"),
    ({"messages": [GOOD], "max_tokens": 0}, "max_tokens"),
    ({"messages": [GOOD], "max_completion_tokens": -9223372036854775808}, "max_completion_tokens"),
    ({"messages": [GOOD], "max_tokens": 1e400}, "max_tokens"),
    ({"messages": [GOOD], "n": 18446744073709551616}, "n"),
    ({"messages": [GOOD], "temperature": 2.0000001}, "temperature"),
    ({"messages": [GOOD], "temperature": -5e-324}, "temperature"),
    ({"messages": [GOOD], "top_p": 0}, "top_p"),
    ({"messages": [GOOD], "top_p": 1.0000001}, "top_p"),
    # A lone UTF-16 surrogate is legal JSON but no Unicode text: the tokenizer cannot encode it.
    ({"messages": [{"role": "user", "content": "hi \ud800"}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "\udfff"}]}]}, "messages.0.content.0.text"),
    ({"messages": [GOOD], "stop": ["ok", "\ud800"]}, "stop"),
])
def test_invalid_body_is_400(http, body, param):
    error = assert_openai_error(post_json(http, body), 400, param)
    assert error["type"] == "invalid_request_error"


def post_json(http, body: dict) -> httpx.Response:
    """Posts `body` as ASCII JSON: lone surrogates travel as their \\u escapes, as a client's JSON can send them."""
    return http.post("/v1/chat/completions", content=json.dumps(body).encode(),
                     headers={"content-type": "application/json"})


@pytest.mark.parametrize("seed", [-9223372036854775808, 9223372036854775807])
def test_seed_accepts_the_whole_int64_range(http, seed):
    response = post_json(http, {"messages": [GOOD], "seed": seed, "temperature": 1.0, "max_tokens": 2})
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == 2


def test_unknown_model_with_lone_surrogate_is_404_quoting_it(http):
    response = post_json(http, {"model": "gpt-\ud800", "messages": [GOOD]})
    error = assert_openai_error(response, 404, "model")
    assert error["code"] == "model_not_found" and "gpt-\ud800" in error["message"]
    assert response.content.isascii()  # the surrogate travels as its \ud800 escape


def test_lone_surrogate_in_an_unused_field_is_ignored(http):
    response = post_json(http, {"messages": [GOOD], "user": "\udbff", "max_tokens": 1})
    assert response.status_code == 200, response.text


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
    series = 'model_service_requests_total{status="400"}'
    before = sample_value(http.get("/metrics").text, series)
    assert http.post("/v1/chat/completions", json={"messages": []}).status_code == 400
    assert sample_value(http.get("/metrics").text, series) == before + 1
