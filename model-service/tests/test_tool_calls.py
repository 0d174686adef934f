"""Tool calling through the real service and the openai SDK, with the small real model."""

from __future__ import annotations

import pytest

from test_errors import assert_openai_error

MODEL = "smollm2-135m-instruct"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                   "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Get the local time in a timezone",
    "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"],
                   "additionalProperties": False}}}
TOOLS = [WEATHER, TIME]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
USER = {"role": "user", "content": "hi"}


@pytest.mark.parametrize("body, param", [
    ({"messages": [USER], "tools": "get_weather"}, "tools"),
    ({"messages": [USER], "tools": [{"type": "function"}]}, "tools.0.function"),
    ({"messages": [USER], "tools": [{"type": "retrieval", "function": WEATHER["function"]}]}, "tools.0.type"),
    ({"messages": [USER], "tools": [{"type": "function", "function": {"name": "get weather"}}]},
     "tools.0.function.name"),
    ({"messages": [USER], "tools": [{"type": "function", "function": {"name": "x" * 65}}]}, "tools.0.function.name"),
    ({"messages": [USER], "tools": [{"type": "function", "function": {"name": "f", "parameters": "city"}}]},
     "tools.0.function.parameters"),
    ({"messages": [USER], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]},
     "tools.0.function.parameters"),
    ({"messages": [USER], "tools": [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "strnig"}}}}}]},
     "tools.0.function.parameters"),
    ({"messages": [USER], "tools": [WEATHER, WEATHER]}, "tools"),
    ({"messages": [USER], "tool_choice": "auto"}, "tool_choice"),
    ({"messages": [USER], "tools": TOOLS, "tool_choice": "always"}, "tool_choice"),
    ({"messages": [USER], "tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_news"}}},
     "tool_choice"),
    ({"messages": [USER], "tools": TOOLS, "tool_choice": {"type": "function"}}, "tool_choice.function"),
    ({"messages": [USER], "tools": TOOLS, "parallel_tool_calls": "both"}, "parallel_tool_calls"),
    ({"messages": [USER, {"role": "tool", "content": "18C"}], "tools": TOOLS}, "messages.1.tool_call_id"),
    ({"messages": [USER, {"role": "tool", "tool_call_id": "call_1"}], "tools": TOOLS}, "messages.1"),
    ({"messages": [USER, {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                                                                "function": {"name": "get_time"}}]}]},
     "messages.1.tool_calls.0.function.arguments"),
])
def test_bad_tool_input_is_400_naming_the_field(http, body, param):
    error = assert_openai_error(http.post("/v1/chat/completions", json=body), 400, param)
    assert error["type"] == "invalid_request_error"


def test_auto_with_tools_the_model_does_not_call_answers_with_text(client):
    reply = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, max_tokens=40)
    choice = reply.choices[0]
    assert choice.message.tool_calls is None
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    stream = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, max_tokens=40, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == choice.message.content
