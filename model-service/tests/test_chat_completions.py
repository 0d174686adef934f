"""The OpenAI surface against the real small model, through the official openai SDK."""

from __future__ import annotations

import json

from transformers import AutoTokenizer

class _AnyInt:
    def __eq__(self, other) -> bool:
        return isinstance(other, int)


ANY_INT = _AnyInt()
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_answer_names_paris(client):
    reply = client.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION)
    assert "Paris" in reply.choices[0].message.content
    assert reply.object == "chat.completion"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.id.startswith("chatcmpl-")


def test_stream_with_sdk_yields_deltas_then_usage(client):
    stream = client.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finals] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1


def test_sse_framing_ends_with_done(http):
    with http.stream("POST", "/v1/chat/completions", json={"messages": QUESTION, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    for event in events[:-2]:
        assert event.startswith("data: ")
        assert json.loads(event[len("data: "):])["object"] == "chat.completion.chunk"


def test_usage_equals_token_counts(client, model_dir):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    expected_prompt = len(tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True)["input_ids"])
    reply = client.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, max_tokens=6)
    assert reply.usage.prompt_tokens == expected_prompt
    assert reply.usage.completion_tokens == 6
    assert reply.usage.total_tokens == expected_prompt + 6


def test_max_tokens_gives_length(client):
    reply = client.chat.completions.create(model="smollm2-135m-instruct", max_completion_tokens=3,
                                           messages=[{"role": "user", "content": "Write a long poem."}])
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 3


def test_stop_string_cuts_output(client):
    reply = client.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, stop=[" France"])
    assert reply.choices[0].message.content == "The capital of"
    assert reply.choices[0].finish_reason == "stop"


def test_stop_string_in_stream_never_leaks(client):
    stream = client.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, stream=True,
                                            stop="Paris")
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "The capital of France is "


def test_seeded_sampling_repeats(client):
    def ask():
        return client.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, temperature=1.0,
                                              top_p=0.9, seed=7, max_tokens=12).choices[0].message.content
    assert ask() == ask()


def test_system_and_history_are_rendered(client):
    reply = client.chat.completions.create(model="smollm2-135m-instruct", max_tokens=20, messages=[
        {"role": "system", "content": "You answer in one word."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]},
    ])
    assert "Paris" in reply.choices[0].message.content


def test_chinese_stream_has_no_broken_characters(client):
    stream = client.chat.completions.create(model="smollm2-135m-instruct", stream=True, max_tokens=40,
                                            messages=[{"role": "user", "content": "你好，请用中文介绍一下你自己。"}])
    deltas = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert deltas and all("\ufffd" not in d for d in deltas)


def test_models_lists_the_served_model(client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["smollm2-135m-instruct"]


def test_request_id_is_echoed(http):
    response = http.post("/v1/chat/completions", headers={"X-Request-Id": "req-123"},
                         json={"messages": QUESTION, "max_tokens": 1})
    assert response.headers["x-request-id"] == "req-123"
    assert http.get("/v1/models").headers["x-request-id"]


def test_models_reports_the_context_length(http):
    assert http.get("/v1/models").json()["data"] == [
        {"id": "smollm2-135m-instruct", "object": "model", "created": ANY_INT, "owned_by": "llm-relay",
         "max_model_len": 1024}]  # the test server's MODEL_SERVICE_MAX_MODEL_LEN
