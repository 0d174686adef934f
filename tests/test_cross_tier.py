"""The real model-service behind the real gateway, used through the official openai SDK."""

from __future__ import annotations

import json
import socket

import httpx
import openai
import pytest

from stack import free_port, metric_value, start_gateway, start_model_service, wait_for

UPSTREAM_KEY = "ms-cross-tier-secret"
ADMIN_TOKEN = "admin-cross-tier"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
LONG = [{"role": "user", "content": "Write a very long story about a dragon who learns to bake bread."}]


def metric(url: str, name: str) -> float:
    return metric_value(httpx.get(url + "/metrics").text, name)


@pytest.fixture(scope="module")
def model_service(tmp_path_factory):
    with start_model_service(free_port(), {"MODEL_SERVICE_API_KEY": UPSTREAM_KEY},
                             log_dir=tmp_path_factory.mktemp("logs")) as service:
        yield service


@pytest.fixture(scope="module")
def gateway(model_service, tmp_path_factory):
    env = {"GATEWAY_UPSTREAM_API_KEY": UPSTREAM_KEY, "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN}
    with start_gateway(free_port(), [model_service.url], env, log_dir=tmp_path_factory.mktemp("logs")) as gw:
        yield gw


@pytest.fixture
def client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.api_key, max_retries=0, timeout=120)


def usage_rows(gateway) -> list[dict]:
    response = httpx.get(gateway.url + "/admin/usage/requests", params={"limit": 200},
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    return response.json()


def await_model_stopped_and_usage_row(model_service, gateway, cancelled_before: float, request_id: str) -> dict:
    """Waits until model-service counted one more cancellation and its batch is empty, then returns the
    gateway's usage row of request_id."""
    wait_for(lambda: metric(model_service.url, "model_service_requests_cancelled_total") > cancelled_before,
             what="model-service to see the cancellation")
    wait_for(lambda: metric(model_service.url, "model_service_running_batch_size") == 0,
             what="the batch to empty")
    return wait_for(lambda: [r for r in usage_rows(gateway) if r.get("requestId") == request_id],
                    what="the usage row")[0]


def test_streamed_answer_through_the_gateway(client, gateway):
    stream = client.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_stream_without_usage_request_hides_the_usage_chunk(client):
    chunks = list(client.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, stream=True,
                                                 max_tokens=4))
    assert all(c.choices for c in chunks)
    assert all(getattr(c, "usage", None) is None for c in chunks)


def test_usage_is_recorded_per_request(client, gateway):
    reply = client.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, max_tokens=5,
                                           extra_headers={"X-Request-Id": "cross-tier-usage-1"})
    assert reply.usage.completion_tokens == 5

    def recorded():
        return [r for r in usage_rows(gateway) if r.get("requestId") == "cross-tier-usage-1"]

    row = wait_for(recorded, what="the usage row")[0]
    assert row["promptTokens"] == reply.usage.prompt_tokens
    assert row["completionTokens"] == 5
    assert row["endReason"] == "length"


def test_client_disconnect_stops_the_model(gateway, model_service):
    before = metric(model_service.url, "model_service_requests_cancelled_total")
    with httpx.Client(timeout=120) as c:
        with c.stream("POST", gateway.url + "/v1/chat/completions",
                      headers={"Authorization": f"Bearer {gateway.api_key}", "X-Request-Id": "cross-tier-cut"},
                      json={"messages": LONG, "stream": True, "max_tokens": 800}) as response:
            assert response.status_code == 200
            content_events = 0
            for line in response.iter_lines():
                if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                    content_events += 1
                if content_events >= 3:
                    break
    # The client hung up: the gateway must cancel its upstream call, and the model must stop.
    row = await_model_stopped_and_usage_row(model_service, gateway, before, "cross-tier-cut")
    assert row["endReason"] == "client_cancelled"
    assert row["completionTokens"] >= 3  # billed for what was relayed


def test_non_stream_client_that_leaves_stops_the_model_bills_what_was_generated_and_frees_its_slot(
        gateway, model_service):
    """A client waiting for one JSON answer gives up: the gateway notices the closed connection and
    cancels the generation (before this, the model ran on and the key's only slot stayed taken)."""
    created = httpx.post(gateway.url + "/admin/keys", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                         json={"name": "one-at-a-time", "maxConcurrentStreams": 1})
    assert created.status_code in (200, 201), created.text
    headers = {"Authorization": f"Bearer {created.json()['key']}"}
    before = metric(model_service.url, "model_service_requests_cancelled_total")
    tokens_before = metric(model_service.url, "model_service_inter_token_latency_seconds_count")
    body = json.dumps({"messages": LONG, "max_tokens": 2000}).encode()
    with socket.create_connection(("127.0.0.1", gateway.port)) as client_socket:
        client_socket.sendall(
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {headers['Authorization']}"
            f"\r\nContent-Type: application/json\r\nX-Request-Id: cross-tier-plain-cut\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        wait_for(lambda: metric(model_service.url, "model_service_inter_token_latency_seconds_count")
                 >= tokens_before + 5, what="the model to generate for this request")
    # the client closed its connection without an answer
    row = await_model_stopped_and_usage_row(model_service, gateway, before, "cross-tier-plain-cut")
    assert row["endReason"] == "client_cancelled"
    assert row["streamed"] is False
    assert 0 < row["completionTokens"] < 2000  # what was generated before the client left, not the cap
    again = httpx.post(gateway.url + "/v1/chat/completions", headers=headers, timeout=120,
                       json={"messages": QUESTION, "max_tokens": 2})
    assert again.status_code == 200, again.text  # the key's one slot was freed
    assert again.json()["usage"]["completion_tokens"] == 2


def test_model_service_killed_mid_stream_gives_clean_error_and_gateway_stays_up(tmp_path):
    """A second, private pair: this test kills its model-service."""
    with start_model_service(free_port(), log_dir=tmp_path) as doomed, \
            start_gateway(free_port(), [doomed.url], {"GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN}, log_dir=tmp_path) as gw:
        headers = {"Authorization": f"Bearer {gw.api_key}"}
        events: list[str] = []
        with httpx.Client(timeout=120) as c:
            with c.stream("POST", gw.url + "/v1/chat/completions", headers=headers,
                          json={"messages": LONG, "stream": True, "max_tokens": 800}) as response:
                assert response.status_code == 200
                killed = False
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        events.append(line[6:])
                    if not killed and len(events) >= 4:
                        doomed.kill()
                        killed = True
        assert events[-1] == "[DONE]"
        error = json.loads(events[-2])["error"]
        assert error["message"] and error["type"]
        # The gateway is still up and answers new requests with a clean 503 in OpenAI's shape.
        assert httpx.get(gw.url + "/actuator/health").status_code in (200, 503)
        retry = httpx.post(gw.url + "/v1/chat/completions", headers=headers, json={"messages": QUESTION},
                           timeout=60)
        assert retry.status_code == 503
        assert retry.json()["error"]["message"]
        assert "retry-after" in retry.headers


# ---- operator controls (issue 11): identity and content filter with the real model ----------------

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MODEL = "smollm2-135m-instruct"
# A pair the 135M model repeats with greedy decoding (tried against the model before writing this test).
IDENTITY = "You are Zephyr, a helpful assistant made by Acme. Always introduce yourself as Zephyr."
WHO = [{"role": "user", "content": "Who are you?"}]


def admin(gateway, method: str, path: str, body=None) -> httpx.Response:
    return httpx.request(method, gateway.url + path, headers=ADMIN, json=body, timeout=30)


def ask(client, messages, max_tokens: int) -> str:
    reply = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=max_tokens)
    return reply.choices[0].message.content


def test_a_configured_identity_is_the_answer_to_who_are_you(gateway, client):
    assert "Zephyr" not in ask(client, WHO, 20)
    # the model is known once the health probe has read the replica's /v1/models
    def put_identity():
        response = admin(gateway, "PUT", f"/admin/system-prompts/models/{MODEL}",
                         {"prompt": IDENTITY, "mode": "prepend"})
        return response if response.status_code == 200 else None

    put = wait_for(put_identity, timeout_s=30, what="the model to be listed")
    assert put.json()["mode"] == "prepend"
    try:
        answer = ask(client, WHO, 20)
        assert "Zephyr" in answer, answer
        stream = client.chat.completions.create(model=MODEL, messages=WHO, temperature=0, max_tokens=20, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == answer
    finally:
        assert admin(gateway, "DELETE", f"/admin/system-prompts/models/{MODEL}").status_code == 204


def test_the_content_filter_refuses_a_prompt_and_masks_or_blocks_the_real_answer(gateway, client):
    assert "Paris" in ask(client, QUESTION, 12)
    assert admin(gateway, "PUT", "/admin/content-filter/lists/cities",
                 {"action": "mask", "checkPrompt": False, "words": ["paris"]}).status_code == 200
    assert admin(gateway, "PUT", "/admin/content-filter/lists/forbidden",
                 {"action": "block", "words": ["ｄｒａｇｏｎ"]}).status_code == 200
    try:
        masked = ask(client, QUESTION, 12)
        assert "Paris" not in masked and "*****" in masked, masked
        stream = client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, max_tokens=12,
                                                stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == masked

        with pytest.raises(openai.BadRequestError) as refused:
            ask(client, [{"role": "user", "content": "Tell me about a DRAGON."}], 5)
        assert refused.value.code == "content_filter"

        hits = admin(gateway, "GET", "/admin/content-filter/hits").json()
        assert {(h["list"], h["side"]) for h in hits} == {("cities", "output"), ("forbidden", "prompt")}
    finally:
        admin(gateway, "DELETE", "/admin/content-filter/lists/cities")
        admin(gateway, "DELETE", "/admin/content-filter/lists/forbidden")


# -- tool calls: the gateway passes `tools` and `tool_choice` through, relays the `delta.tool_calls` chunks of
# a stream unchanged, builds a non-streamed reply's `message.tool_calls` from the upstream stream
# (ChatCompletionAggregator), and bills the tokens either way.

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                   "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Get the local time in a timezone",
    "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
FORCED = {"messages": ASK, "tools": [WEATHER, TIME], "tool_choice": "required", "max_tokens": 200}


@pytest.fixture(scope="module")
def forced_call(model_service) -> list[tuple[str, dict]]:
    """The call the model-service itself makes for FORCED (greedy), to compare the gateway's against."""
    reply = openai.OpenAI(base_url=model_service.url + "/v1", api_key=UPSTREAM_KEY, max_retries=0,
                          timeout=120).chat.completions.create(model="smollm2-135m-instruct", **FORCED)
    return [(c.function.name, json.loads(c.function.arguments)) for c in reply.choices[0].message.tool_calls]


def usage_row(gateway, request_id: str) -> dict:
    return wait_for(lambda: [r for r in usage_rows(gateway) if r.get("requestId") == request_id],
                    what="the usage row")[0]


def test_non_stream_tool_call_through_the_gateway(client, gateway, forced_call):
    reply = client.chat.completions.create(model="smollm2-135m-instruct", **FORCED,
                                           extra_headers={"X-Request-Id": "tools-plain"})
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert [c.type for c in choice.message.tool_calls] == ["function"] * len(forced_call)
    assert all(c.id.startswith("call_") for c in choice.message.tool_calls)
    assert [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls] == forced_call
    row = usage_row(gateway, "tools-plain")
    assert (row["promptTokens"], row["completionTokens"]) == (reply.usage.prompt_tokens, reply.usage.completion_tokens)
    assert reply.usage.completion_tokens > 0


def test_streamed_tool_call_through_the_gateway(client, gateway, forced_call):
    chunks = list(client.chat.completions.create(model="smollm2-135m-instruct", **FORCED, stream=True,
                                                 stream_options={"include_usage": True},
                                                 extra_headers={"X-Request-Id": "tools-stream"}))
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for fragment in (chunk.choices[0].delta.tool_calls or ()) if chunk.choices else ():
            if fragment.id is not None:
                calls[fragment.index] = {"name": fragment.function.name, "arguments": ""}
            calls[fragment.index]["arguments"] += fragment.function.arguments or ""
    assert [(c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())] == forced_call
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["tool_calls"]
    usage = chunks[-1].usage
    row = usage_row(gateway, "tools-stream")
    assert (row["promptTokens"], row["completionTokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert usage.completion_tokens > 0
