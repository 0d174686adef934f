"""/v1/completions (legacy text completions) against the real small model, through the openai SDK."""

from __future__ import annotations

import json

import httpx
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import API_KEY
from stack import metric_value, wait_for

MODEL = "smollm2-135m-instruct"
PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return AutoTokenizer.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def prompt_ids(tokenizer) -> list[int]:
    return tokenizer(PROMPT, add_special_tokens=False)["input_ids"]


def test_prompt_is_continued_raw_as_transformers_greedy_decoding_does(client, model_dir, tokenizer, prompt_ids):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    expected_ids = model.generate(torch.tensor([prompt_ids]), max_new_tokens=8, do_sample=False)[0][len(prompt_ids):]
    reply = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=8, temperature=0)
    assert reply.object == "text_completion"
    assert reply.id.startswith("cmpl-")
    assert reply.model == MODEL
    assert [c.text for c in reply.choices] == [tokenizer.decode(expected_ids)]
    assert reply.choices[0].finish_reason == "length"
    # no chat template: the prompt counts exactly its own tokens
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (
        len(prompt_ids), 8, len(prompt_ids) + 8)


def test_stream_gives_the_same_text_then_usage(client):
    whole = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=8)
    chunks = list(client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=8, stream=True,
                                            stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert {c.object for c in chunks} == {"text_completion"}
    assert len({c.id for c in chunks}) == 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()


def test_sse_framing_without_usage_ends_with_done(http):
    with http.stream("POST", "/v1/completions", json={"prompt": PROMPT, "max_tokens": 3, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    bodies = [json.loads(event[len("data: "):]) for event in events[:-2]]
    assert all(body["usage"] is None and len(body["choices"]) == 1 for body in bodies)


@pytest.mark.parametrize("as_sent", ["ids", "list of one string", "list of one id list"])
def test_token_ids_and_one_item_lists_are_the_same_prompt(client, prompt_ids, as_sent):
    prompt = {"ids": prompt_ids, "list of one string": [PROMPT], "list of one id list": [prompt_ids]}[as_sent]
    expected = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=5).choices[0].text
    reply = client.completions.create(model=MODEL, prompt=prompt, max_tokens=5)
    assert reply.choices[0].text == expected
    assert reply.usage.prompt_tokens == len(prompt_ids)


def test_echo_puts_the_prompt_before_the_completion(client):
    plain = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=4).choices[0].text
    echoed = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=4, echo=True)
    assert echoed.choices[0].text == PROMPT + plain
    streamed = list(client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=4, echo=True, stream=True))
    assert streamed[0].choices[0].text == PROMPT
    assert "".join(c.choices[0].text for c in streamed) == PROMPT + plain


def test_stop_cuts_the_text(client):
    reply = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=8, stop=["."])
    assert reply.choices[0].text == " Paris"
    assert reply.choices[0].finish_reason == "stop"


def test_seeded_sampling_repeats(client):
    first, second = (client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=8, temperature=1.0,
                                               top_p=0.9, seed=7).choices[0].text for _ in range(2))
    assert first == second


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"prompt": "hi", "suffix": " end"}, "suffix", "invalid_request"),
    ({"prompt": ["one", "two"]}, "prompt", "invalid_request"),
    ({"prompt": ""}, "prompt", "invalid_request"),
    ({"prompt": []}, "prompt", "invalid_request"),
    ({"prompt": [49152]}, "prompt", "invalid_request"),
    ({"prompt": "hi", "n": 2}, "n", "invalid_request"),
    ({"prompt": "hi", "best_of": 3}, "best_of", "invalid_request"),
    ({"prompt": "hi", "logprobs": 2}, "logprobs", "invalid_request"),
    ({"prompt": "hi", "presence_penalty": 2.5}, "presence_penalty", "invalid_request"),
    ({"prompt": "hi", "max_tokens": 0}, "max_tokens", "invalid_request"),
    ({"prompt": "hi", "max_tokens": 5000}, "max_tokens", "context_length_exceeded"),
    ({"max_tokens": 2}, "prompt", "invalid_request"),
    ({"prompt": "hi", "model": "gpt-4"}, "model", "model_not_found"),
])
def test_bad_requests_get_4xx_in_openai_shape(http, body, param, code):
    response = http.post("/v1/completions", json=body)
    assert response.status_code == (404 if code == "model_not_found" else 400)
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)
    assert error["message"]


def _cancelled(url: str) -> float:
    return metric_value(httpx.get(url + "/metrics").text, "model_service_requests_cancelled_total")


def _batch(url: str) -> float:
    return metric_value(httpx.get(url + "/metrics").text, "model_service_running_batch_size")


def test_stream_client_that_leaves_cancels_its_generation(server):
    before = _cancelled(server.url)
    with httpx.Client(timeout=60) as c, c.stream(
            "POST", server.url + "/v1/completions", headers={"Authorization": f"Bearer {API_KEY}"},
            json={"prompt": "Once upon a time", "stream": True, "max_tokens": 600}) as response:
        texts = 0
        for line in response.iter_lines():
            texts += line.startswith("data: {")
            if texts == 3:
                break  # leaving the `with` closes the connection mid-stream
    wait_for(lambda: _cancelled(server.url) == before + 1, what="the cancellation to be counted")
    wait_for(lambda: _batch(server.url) == 0, what="the batch to empty")


def test_non_stream_client_that_leaves_cancels_its_generation(server):
    before = _cancelled(server.url)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url + "/v1/completions", headers={"Authorization": f"Bearer {API_KEY}"},
                   json={"prompt": "Once upon a time", "max_tokens": 600}, timeout=httpx.Timeout(60, read=1.0))
    wait_for(lambda: _cancelled(server.url) == before + 1, what="the cancellation to be counted")
    wait_for(lambda: _batch(server.url) == 0, what="the batch to empty")
