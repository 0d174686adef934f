"""Tool calling through the real service and the openai SDK, with the small real model."""

from __future__ import annotations

import json

import jsonschema
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
    reply = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, max_tokens=16)
    choice = reply.choices[0]
    assert choice.message.tool_calls is None
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    stream = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, max_tokens=16, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == choice.message.content


PARAMETERS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
GET_TIME = {"type": "function", "function": {"name": "get_time"}}


def calls_of(message) -> list[tuple[str, dict]]:
    """(name, arguments) of each call, after checking its shape and that its arguments meet its schema."""
    out = []
    for call in message.tool_calls:
        assert call.type == "function" and call.id.startswith("call_")
        arguments = json.loads(call.function.arguments)
        jsonschema.validate(arguments, PARAMETERS[call.function.name])
        out.append((call.function.name, arguments))
    assert len({c.id for c in message.tool_calls}) == len(out)
    return out


def streamed_calls(chunks) -> tuple[str, list[tuple[str, dict]], list[str]]:
    """Reassembles streamed tool calls by index, as the SDKs do: id, type and name once, arguments in pieces."""
    calls: dict[int, dict] = {}
    content, finish = "", []
    for chunk in chunks:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for fragment in delta.tool_calls or ():
            if fragment.id is not None:
                assert fragment.index not in calls and fragment.type == "function" and fragment.function.name
                calls[fragment.index] = {"name": fragment.function.name, "arguments": ""}
            else:
                assert fragment.function.name is None
            calls[fragment.index]["arguments"] += fragment.function.arguments or ""
        if chunk.choices[0].finish_reason:
            finish.append(chunk.choices[0].finish_reason)
    assert sorted(calls) == list(range(len(calls)))
    return content, [(c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())], finish


@pytest.mark.parametrize("tool_choice, parallel", [
    ("required", None), ("required", False), (GET_TIME, None), (GET_TIME, False)])
def test_forced_call_is_valid_and_streams_the_same(client, tool_choice, parallel):
    extra = {} if parallel is None else {"parallel_tool_calls": parallel}
    reply = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, tool_choice=tool_choice,
                                           max_tokens=200, **extra)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = calls_of(choice.message)
    if tool_choice == GET_TIME or parallel is False:
        assert len(calls) == 1
    if tool_choice == GET_TIME:
        assert calls[0][0] == "get_time"
    chunks = list(client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, tool_choice=tool_choice,
                                                 max_tokens=200, stream=True, **extra))
    assert streamed_calls(chunks) == ("", calls, ["tool_calls"])


def test_sdk_stream_helper_assembles_the_call(client):
    with client.chat.completions.stream(model=MODEL, messages=ASK, tools=TOOLS, tool_choice="required",
                                        max_tokens=200) as stream:
        final = stream.get_final_completion()
    reply = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, tool_choice="required",
                                           max_tokens=200)
    assert final.choices[0].finish_reason == "tool_calls"
    assert calls_of(final.choices[0].message) == calls_of(reply.choices[0].message)


def test_round_trip_with_the_tool_result(client):
    first = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS,
                                           tool_choice={"type": "function", "function": {"name": "get_weather"}})
    call = first.choices[0].message.tool_calls[0]
    history = ASK + [first.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 18, "sky": "cloudy"}'}]
    second = client.chat.completions.create(model=MODEL, messages=history, tools=TOOLS, max_tokens=60)
    assert second.usage.prompt_tokens > first.usage.prompt_tokens
    choice = second.choices[0]
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    assert "18" in choice.message.content  # the small model echoes the result it was given


def test_auto_parses_a_call_the_model_writes_streamed_or_not(client):
    """The small model copies a Hermes call it is shown: `auto` turns that text into a call, and the
    stream sends no piece of the tag as content."""
    copy = [{"role": "user", "content": 'Repeat exactly: <tool_call>\n{"name": "get_weather", "arguments": '
                                        '{"city": "Rome"}}\n</tool_call>'}]
    city = [{"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    reply = client.chat.completions.create(model=MODEL, messages=copy, tools=city, max_tokens=60)
    choice = reply.choices[0]
    assert (choice.finish_reason, choice.message.content) == ("tool_calls", None)
    assert [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls] == [
        ("get_weather", {"city": "Rome"})]
    chunks = list(client.chat.completions.create(model=MODEL, messages=copy, tools=city, max_tokens=60,
                                                 stream=True))
    assert streamed_calls(chunks) == ("", [("get_weather", {"city": "Rome"})], ["tool_calls"])


def test_forced_call_with_a_keyword_the_grammar_cannot_enforce_is_400(http):
    tags = {"type": "function", "function": {"name": "tag", "parameters": {
        "type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}}}}
    body = {"messages": [USER], "tools": [tags], "tool_choice": "required"}
    error = assert_openai_error(http.post("/v1/chat/completions", json=body), 400, "tools")
    assert error["code"] == "unsupported_schema" and "uniqueItems" in error["message"]
    # with auto nothing is enforced, so the same tools are fine
    assert http.post("/v1/chat/completions", json={**body, "tool_choice": "auto", "max_tokens": 2}).status_code == 200
