"""Tool calls through the real gateway: the gateway passes `tools` and `tool_choice` through, relays the
`delta.tool_calls` chunks of a stream unchanged, builds a non-streamed reply's `message.tool_calls` from
the upstream stream (ChatCompletionAggregator), and bills the tokens either way."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from stack import free_port, start_gateway, start_model_service, wait_for

UPSTREAM_KEY = "ms-tools-secret"
ADMIN_TOKEN = "admin-tools"
MODEL = "smollm2-135m-instruct"
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
def model_service(tmp_path_factory):
    with start_model_service(free_port(), {"MODEL_SERVICE_API_KEY": UPSTREAM_KEY},
                             log_dir=tmp_path_factory.mktemp("logs")) as service:
        yield service


@pytest.fixture(scope="module")
def gateway(model_service, tmp_path_factory):
    env = {"GATEWAY_UPSTREAM_API_KEY": UPSTREAM_KEY, "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN}
    with start_gateway(free_port(), [model_service.url], env, log_dir=tmp_path_factory.mktemp("logs")) as gw:
        yield gw


@pytest.fixture(scope="module")
def direct(model_service) -> list[tuple[str, dict]]:
    """The call the model-service itself makes for FORCED (greedy), to compare the gateway's against."""
    reply = openai.OpenAI(base_url=model_service.url + "/v1", api_key=UPSTREAM_KEY, max_retries=0,
                          timeout=120).chat.completions.create(model=MODEL, **FORCED)
    return [(c.function.name, json.loads(c.function.arguments)) for c in reply.choices[0].message.tool_calls]


@pytest.fixture
def client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.api_key, max_retries=0, timeout=120)


def usage_row(gateway, request_id: str) -> dict:
    def rows():
        response = httpx.get(gateway.url + "/admin/usage/requests", params={"limit": 200},
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert response.status_code == 200, response.text
        return [r for r in response.json() if r.get("requestId") == request_id]
    return wait_for(rows, what="the usage row")[0]


def test_non_stream_tool_call_through_the_gateway(client, gateway, direct):
    reply = client.chat.completions.create(model=MODEL, **FORCED, extra_headers={"X-Request-Id": "tools-plain"})
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert [c.type for c in choice.message.tool_calls] == ["function"] * len(direct)
    assert all(c.id.startswith("call_") for c in choice.message.tool_calls)
    assert [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls] == direct
    row = usage_row(gateway, "tools-plain")
    assert (row["promptTokens"], row["completionTokens"]) == (reply.usage.prompt_tokens, reply.usage.completion_tokens)
    assert reply.usage.completion_tokens > 0


def test_streamed_tool_call_through_the_gateway(client, gateway, direct):
    chunks = list(client.chat.completions.create(model=MODEL, **FORCED, stream=True,
                                                 stream_options={"include_usage": True},
                                                 extra_headers={"X-Request-Id": "tools-stream"}))
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for fragment in (chunk.choices[0].delta.tool_calls or ()) if chunk.choices else ():
            if fragment.id is not None:
                calls[fragment.index] = {"name": fragment.function.name, "arguments": ""}
            calls[fragment.index]["arguments"] += fragment.function.arguments or ""
    assert [(c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())] == direct
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["tool_calls"]
    usage = chunks[-1].usage
    row = usage_row(gateway, "tools-stream")
    assert (row["promptTokens"], row["completionTokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert usage.completion_tokens > 0
