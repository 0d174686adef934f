"""Tool calls read out of model text (Hermes and ChatGLM3 formats), whole and in streamed pieces,
and tools rendered into the prompt. No server: the parser and the renderer are plain code."""

from __future__ import annotations

import json
import random

import pytest
from transformers import AutoTokenizer

from model_service.openai.chat_completion.protocol import ChatCompletionRequest
from model_service.openai.chat_completion.tool_calls import ToolPlan, template_uses_tools
from model_service.tool_parsers import ChatGLM3StreamParser, HermesStreamParser

NAMES = {"get_weather", "get_time"}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}}}}


def run(parser, pieces) -> tuple[str, list[tuple[str, str]], list[dict]]:
    """Feeds pieces; returns the content, the calls (name, arguments) reassembled as the SDKs do, and the deltas."""
    deltas = []
    for piece in pieces:
        deltas += parser.feed(piece)
    deltas += parser.finish()
    dumped = [d.model_dump(exclude_none=True) for d in deltas]
    calls: dict[int, dict] = {}
    for d in dumped:
        for fragment in d.get("tool_calls", ()):
            call = calls.setdefault(fragment["index"], {"id": None, "name": "", "arguments": ""})
            if "id" in fragment:
                assert call["id"] is None, "the id comes once, in the first fragment"
                assert fragment["id"].startswith("call_") and fragment["type"] == "function"
                assert "name" in fragment["function"], "the name comes in the first fragment"
                call["id"] = fragment["id"]
            call["name"] += fragment["function"].get("name", "")
            call["arguments"] += fragment["function"].get("arguments", "")
    assert sorted(calls) == list(range(len(calls)))
    content = "".join(d.get("content", "") for d in dumped)
    return content, [(c["name"], c["arguments"]) for _, c in sorted(calls.items())], dumped


def splits(text: str, seed: int) -> list[str]:
    """`text` cut at random places, as a detokenizer hands it out."""
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, len(text) // 3)))
    return [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]


HERMES_CASES = [
    # (model text, content, calls)
    ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
     "", [("get_weather", '{"city": "Paris"}')]),
    ('Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "巴黎"}}\n</tool_call>\n'
     '<tool_call>{"name": "get_time", "arguments": {"timezone": "CET"}}</tool_call>\n',
     "Let me check.", [("get_weather", '{"city": "巴黎"}'), ("get_time", '{"timezone": "CET"}')]),
    # "parameters" instead of "arguments", and arguments as a JSON string: both seen from real models
    ('<tool_call>{"name": "get_time", "parameters": {"timezone": "UTC"}}</tool_call>', "",
     [("get_time", '{"timezone": "UTC"}')]),
    ('<tool_call>{"name": "get_time", "arguments": "{\\"timezone\\": \\"UTC\\"}"}</tool_call>', "",
     [("get_time", '{"timezone": "UTC"}')]),
    # the model stopped before the closing tag, with whole JSON: still a call
    ('<tool_call>\n{"name": "get_time", "arguments": {}}\n', "", [("get_time", "{}")]),
    # not calls: the text stays content, nothing is lost
    ('<tool_call>{"name": "launch_rocket", "arguments": {}}</tool_call>',
     '<tool_call>{"name": "launch_rocket", "arguments": {}}</tool_call>', []),
    ("<tool_call>{not json}</tool_call> ok", "<tool_call>{not json}</tool_call> ok", []),
    ('<tool_call>{"name": "get_time", "arguments": [1]}</tool_call>',
     '<tool_call>{"name": "get_time", "arguments": [1]}</tool_call>', []),
    ("<tool_call>{\"name\": \"get_ti", "<tool_call>{\"name\": \"get_ti", []),
    ("Use a <toolbox> or <tool_cal", "Use a <toolbox> or <tool_cal", []),
    ("Plain text.\n\n", "Plain text.\n\n", []),
    # a reply that opens with the call as bare JSON or in a ```json fence, as Qwen2.5-Coder writes it with
    # tool_choice auto (and as vLLM's llama3_json reads a bare one): a call when it names an offered tool
    ('```json\n{\n  "name": "get_weather",\n  "arguments": {\n    "city": "北京"\n  }\n}\n```', "",
     [("get_weather", '{"city": "北京"}')]),
    ('\n{"name": "get_time", "arguments": {"timezone": "UTC"}}', "", [("get_time", '{"timezone": "UTC"}')]),
    ('```json\n{"name": "get_time", "arguments": {}}\n```\nLet me look that up.', "Let me look that up.",
     [("get_time", "{}")]),
    ('```json\n{"name": "get_time", "parameters": {"timezone": "CET"}}\n', "", [("get_time", '{"timezone": "CET"}')]),
    # not calls: JSON data, an unknown tool, code, a cut-off call, a call after other text
    ('```json\n{"name": "launch_rocket", "arguments": {}}\n```',
     '```json\n{"name": "launch_rocket", "arguments": {}}\n```', []),
    ('```json\n{"city": "Paris", "name": "get_time"}\n```', '```json\n{"city": "Paris", "name": "get_time"}\n```', []),
    ('{"name": "get_time", "arguments": [1]} and more', '{"name": "get_time", "arguments": [1]} and more', []),
    ('```python\nprint({"name": "get_time"})\n```', '```python\nprint({"name": "get_time"})\n```', []),
    ('```json\n{"name": "get_time", "arguments": {"timez', '```json\n{"name": "get_time", "arguments": {"timez', []),
    ('Here: {"name": "get_time", "arguments": {}}', 'Here: {"name": "get_time", "arguments": {}}', []),
    ("```", "```", []),
    ("{}", "{}", []),
]


@pytest.mark.parametrize("text, content, calls", HERMES_CASES)
def test_hermes_whole_output(text, content, calls):
    got_content, got_calls, _ = run(HermesStreamParser(NAMES, parallel=True), [text])
    assert (got_content, got_calls) == (content, calls)


@pytest.mark.parametrize("text, content, calls", HERMES_CASES)
@pytest.mark.parametrize("seed", range(5))
def test_hermes_streamed_in_pieces_is_the_same(text, content, calls, seed):
    assert run(HermesStreamParser(NAMES, True), splits(text, seed))[:2] == (content, calls)
    assert run(HermesStreamParser(NAMES, True), list(text))[:2] == (content, calls)


def test_hermes_stream_never_sends_part_of_a_tag_as_content():
    parser = HermesStreamParser(NAMES, True)
    assert [d.content for d in parser.feed("Checking <tool")] == ["Checking"]
    assert parser.feed("_ca") == []
    assert parser.feed('ll>{"name": "get_time", ') == []
    deltas = parser.feed('"arguments": {"timezone": "UTC"}}</tool_call>')
    assert [d.tool_calls[0].function.model_dump(exclude_none=True) for d in deltas] == [
        {"name": "get_time", "arguments": ""}, {"arguments": '{"timezone": "UTC"}'}]
    assert parser.finish() == []


def test_a_reply_that_opens_like_a_json_call_is_held_only_until_it_cannot_be_one():
    parser = HermesStreamParser(NAMES, True)
    assert parser.feed("```js") == []
    assert parser.feed("on\n{") == []
    assert [d.content for d in parser.feed('"city": "Oslo"}')] == ['```json\n{"city": "Oslo"}']
    parser = HermesStreamParser(NAMES, True)
    assert parser.feed('{"name": "get_') == []
    assert [d.content for d in parser.feed('rocket"')] == ['{"name": "get_rocket"']
    parser = HermesStreamParser(NAMES, True)
    assert [d.content for d in parser.feed('{"name": "launch')] == ['{"name": "launch']
    parser = HermesStreamParser(NAMES, True)
    assert [d.content for d in parser.feed("```python\nx = 1")] == ["```python\nx = 1"]


def test_hermes_held_back_text_that_is_no_tag_comes_out():
    parser = HermesStreamParser(NAMES, True)
    assert [d.content for d in parser.feed("a <tool")] == ["a"]
    assert [d.content for d in parser.feed("box")] == [" <toolbox"]


def test_parallel_tool_calls_false_keeps_the_first_call_only():
    text = ('<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>\n'
            '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>')
    assert run(HermesStreamParser(NAMES, parallel=False), [text])[:2] == ("", [("get_weather", '{"city": "Oslo"}')])


CHATGLM3_CASES = [
    ('get_weather\n```python\ntool_call(city="Beijing")\n```', "", [("get_weather", '{"city": "Beijing"}')]),
    ("get_time\n ```python\ntool_call(timezone='Asia/Shanghai', hours=[1, 2], exact=True, note=None)\n```",
     "", [("get_time", '{"timezone": "Asia/Shanghai", "hours": [1, 2], "exact": true, "note": null}')]),
    ("\n你好，我是 ChatGLM3。", "\n你好，我是 ChatGLM3。", []),
    ("\nThe weather\nis fine", "\nThe weather\nis fine", []),
    # ChatGLM3's own demo eval()s this; here anything but literals stays text and nothing runs
    ('get_time\n```python\ntool_call(timezone=__import__("os").getcwd())\n```',
     'get_time\n```python\ntool_call(timezone=__import__("os").getcwd())\n```', []),
    ('launch_rocket\n```python\ntool_call(now=True)\n```', 'launch_rocket\n```python\ntool_call(now=True)\n```', []),
    ("get_time\n```python\ntool_call('UTC')\n```", "get_time\n```python\ntool_call('UTC')\n```", []),
]


@pytest.mark.parametrize("text, content, calls", CHATGLM3_CASES)
@pytest.mark.parametrize("seed", range(3))
def test_chatglm3_whole_and_streamed(text, content, calls, seed):
    assert run(ChatGLM3StreamParser(NAMES, True), [text])[:2] == (content, calls)
    assert run(ChatGLM3StreamParser(NAMES, True), splits(text, seed))[:2] == (content, calls)


def test_chatglm3_text_streams_once_its_first_line_is_not_a_function_name():
    parser = ChatGLM3StreamParser(NAMES, True)
    assert parser.feed("get_") == []
    assert [d.content for d in parser.feed("ready\nto go")] == ["get_ready\nto go"]
    assert [d.content for d in parser.feed(" now")] == [" now"]


def test_non_stream_parse_gives_null_content_when_only_calls():
    plan = ToolPlan.for_request(ChatCompletionRequest(messages=[{"role": "user", "content": "hi"}],
                                                      tools=[WEATHER, TIME]))
    content, calls = plan.parse('\n<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>\n')
    assert content is None
    assert [(c.type, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("function", "get_weather", {"city": "Rome"})]
    assert calls[0].id.startswith("call_")


def test_tool_choice_none_neither_shows_tools_nor_parses(model_dir):
    request = ChatCompletionRequest(messages=[{"role": "user", "content": "hi"}], tools=[WEATHER], tool_choice="none")
    plan = ToolPlan.for_request(request)
    messages, kwargs = plan.template_inputs(request.messages, AutoTokenizer.from_pretrained(model_dir).chat_template)
    assert (messages, kwargs, plan.parses_output) == ([{"role": "user", "content": "hi"}], {}, False)


def test_smollm2_template_has_no_tools_so_the_system_prompt_carries_them(model_dir):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert not template_uses_tools(tokenizer.chat_template)
    request = ChatCompletionRequest(tools=[WEATHER, TIME], messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "24C"},
    ])
    messages, kwargs = ToolPlan.for_request(request).template_inputs(request.messages, tokenizer.chat_template)
    assert kwargs == {}
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    system = messages[0]["content"]
    assert system.startswith("Be brief.\n\n# Tools\n")
    assert "<tools>\n" + json.dumps(WEATHER) + "\n" + json.dumps(TIME) + "\n</tools>" in system
    assert messages[2]["content"] == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>')
    assert messages[3]["content"] == "<tool_response>\n18C\n</tool_response>\n<tool_response>\n24C\n</tool_response>"
    tokenizer.apply_chat_template(messages, add_generation_prompt=True)  # the template takes them


TOOL_TEMPLATE = ("{% if tools %}TOOLS {{ tools | tojson }}{{ '\\n' }}{% endif %}{% for m in messages %}{{ m.role }}: "
                 "{% if m.tool_calls %}{% for c in m.tool_calls %}CALL {{ c.function.name }} "
                 "{{ c.function.arguments | tojson }}{% endfor %}{% else %}{{ m.content }}{% endif %}"
                 "{% if m.tool_call_id %} (for {{ m.tool_call_id }}){% endif %}{{ '\\n' }}{% endfor %}")


def test_a_template_that_takes_tools_gets_them_in_transformers_convention(model_dir):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert template_uses_tools(TOOL_TEMPLATE)
    request = ChatCompletionRequest(tools=[WEATHER], tool_choice="auto", messages=[
        {"role": "user", "content": "Paris?"},
        {"role": "assistant", "tool_calls": [
            {"id": "call_a", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
    ])
    messages, kwargs = ToolPlan.for_request(request).template_inputs(request.messages, TOOL_TEMPLATE)
    assert kwargs == {"tools": [WEATHER]}
    text = tokenizer.apply_chat_template(messages, chat_template=TOOL_TEMPLATE, tokenize=False, **kwargs)
    assert text.splitlines()[1:] == ["user: Paris?", 'assistant: CALL get_weather {"city": "Paris"}',
                                     "tool: 18C (for call_a)"]
    assert text.startswith('TOOLS [{"type": "function", "function": {"name": "get_weather"')


def test_chatglm_family_renders_tools_as_its_demo_does():
    request = ChatCompletionRequest(tools=[WEATHER], messages=[
        {"role": "user", "content": "北京天气？"},
        {"role": "assistant", "tool_calls": [
            {"id": "call_a", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"北京"}'}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "晴"},
    ])
    messages, _ = ToolPlan.for_request(request, model_type="chatglm").template_inputs(request.messages, None)
    assert messages[0] == {"role": "system", "content": (
        "Answer the following questions as best as you can. You have access to the following tools:\n"
        + json.dumps([WEATHER["function"]], indent=4, ensure_ascii=False))}
    assert messages[2] == {"role": "assistant", "content": "get_weather\n```python\ntool_call(city='北京')\n```"}
    assert messages[3] == {"role": "observation", "content": "晴"}


# -- required / named: the bare JSON a grammar forces --------------------------------------

FORCED_CASES = [
    ('{"name": "get_weather", "arguments": {"city": "Paris"}}', [("get_weather", '{"city": "Paris"}')]),
    ('[{"name": "get_weather", "arguments": {"city": "a \\"}\\" b", "n": [1, {"x": "]"}]}}, '
     '{"name": "get_time", "arguments": {}}]',
     [("get_weather", '{"city": "a \\"}\\" b", "n": [1, {"x": "]"}]}'), ("get_time", "{}")]),
]


@pytest.mark.parametrize("text, calls", FORCED_CASES)
@pytest.mark.parametrize("seed", range(5))
def test_forced_calls_stream_their_arguments_as_generated(text, calls, seed):
    plan = ToolPlan.for_request(ChatCompletionRequest(messages=[{"role": "user", "content": "hi"}],
                                                      tools=[WEATHER, TIME], tool_choice="required"))
    assert run(plan.parser(), [text])[:2] == ("", calls)
    assert run(plan.parser(), splits(text, seed))[:2] == ("", calls)
    content, streamed, deltas = run(plan.parser(), list(text))
    assert (content, streamed) == ("", calls)
    # one fragment per character of the arguments: nothing waits for the end of the call
    assert len(deltas) == len(calls) + sum(len(arguments) for _, arguments in calls)


NESTED = {"type": "function", "function": {"name": "book", "parameters": {
    "type": "object", "properties": {"guest": {"$ref": "#/$defs/Guest"}, "nights": {"type": "integer", "minimum": 1}},
    "required": ["guest", "nights"], "additionalProperties": False,
    "$defs": {"Guest": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}}}


@pytest.mark.parametrize("choice, parallel", [("required", True), ("required", False),
                                              ({"type": "function", "function": {"name": "book"}}, True)])
def test_constraint_schema_accepts_exactly_valid_calls(choice, parallel):
    jsonschema = pytest.importorskip("jsonschema")
    plan = ToolPlan.for_request(ChatCompletionRequest(messages=[{"role": "user", "content": "hi"}],
                                                      tools=[WEATHER, NESTED], tool_choice=choice,
                                                      parallel_tool_calls=parallel))
    schema = plan.constraint_schema()
    good = {"name": "book", "arguments": {"guest": {"name": "Ada"}, "nights": 2}}
    bad = {"name": "book", "arguments": {"guest": {}, "nights": 2}}  # the $ref'd Guest needs a name
    wrap = (lambda call: [call]) if schema.get("type") == "array" else (lambda call: call)
    jsonschema.validate(wrap(good), schema)
    for wrong in (bad, {"name": "get_time", "arguments": {}}, {"name": "book"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrap(wrong), schema)
    if schema.get("type") == "array":
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate([], schema)


def test_dialects_are_registered_by_name_and_picked_by_model_type():
    from model_service.tool_parsers import ChatGLM3Dialect, HermesDialect, dialect_for, dialects

    assert set(dialects()) == {"hermes", "chatglm3"}
    assert isinstance(dialect_for("chatglm"), ChatGLM3Dialect)
    for model_type in ("llama", "qwen2", None, ""):
        assert isinstance(dialect_for(model_type), HermesDialect)
