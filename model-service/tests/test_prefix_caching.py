"""The prefix cache through the API: a repeated prompt is served from it with the same answer,
`cache_salt` keeps callers apart, and the counters say how many prompt tokens it supplied."""

from __future__ import annotations

import uuid

import httpx
import pytest

from stack import metric_value
from test_errors import assert_openai_error

QUESTION = ("You answer questions about the weather in one sentence. Always mention the season. "
            "Question: is it usually cold in Oslo in January?")


def counters(server):
    text = httpx.get(server.url + "/metrics").text
    return (metric_value(text, "model_service_prefix_cache_queries_total"),
            metric_value(text, "model_service_prefix_cache_hits_total"),
            metric_value(text, "model_service_prefill_tokens_total"))


def ask(http, salt):
    body = {"model": "smollm2-135m-instruct", "max_tokens": 12, "temperature": 0,
            "messages": [{"role": "user", "content": QUESTION}], "cache_salt": salt}
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_repeated_prompt_is_served_from_the_cache_with_the_same_answer(http, server):
    salt = uuid.uuid4().hex  # nothing another test stored can match
    before = counters(server)
    first = ask(http, salt)
    middle = counters(server)
    second = ask(http, salt)
    after = counters(server)
    prompt = first["usage"]["prompt_tokens"]
    assert second["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]
    assert [m - b for m, b in zip(middle, before)] == [prompt, 0, prompt]
    cached = (prompt - 1) // 16 * 16  # whole blocks, leaving the last token to compute
    assert [a - m for a, m in zip(after, middle)] == [prompt, cached, prompt - cached]
    other = ask(http, uuid.uuid4().hex)  # another caller, same prompt: nothing shared
    assert [x - a for x, a in zip(counters(server), after)] == [prompt, 0, prompt]
    assert other["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]


@pytest.mark.parametrize("salt", ["", "x" * 257, 7])
def test_a_bad_cache_salt_is_400_naming_it(http, salt):
    response = http.post("/v1/chat/completions", json={"model": "smollm2-135m-instruct", "cache_salt": salt,
                                                       "messages": [{"role": "user", "content": "hi"}]})
    assert_openai_error(response, 400, "cache_salt")
    response = http.post("/v1/completions", json={"model": "smollm2-135m-instruct", "prompt": "hi",
                                                  "cache_salt": salt})
    assert_openai_error(response, 400, "cache_salt")
