"""The clients business services use, through the real gateway in front of the real small model: the
openai SDK's legacy text completions, LangChain's ChatOpenAI and Spring AI's ChatClient
(clients/spring-ai-check, run here with Maven against this module's gateway)."""

from __future__ import annotations

import re
import shutil
import subprocess

import openai
import pytest
from langchain_openai import ChatOpenAI

from stack import REPO, wait_for
# The same real stack as the cross-tier tests (one model-service, one gateway), started once for this module.
from test_cross_tier import UPSTREAM_KEY, gateway, model_service, usage_rows  # noqa: F401 (fixtures)

MODEL = "smollm2-135m-instruct"
PROMPT = "The capital of France is"
QUESTION = "What is the capital of France?"
SPRING_AI_CHECK = REPO / "clients" / "spring-ai-check"


@pytest.fixture(scope="module")
def client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.api_key, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def direct(model_service) -> openai.OpenAI:
    """The model-service itself, without the gateway: what the gateway must pass on unchanged."""
    return openai.OpenAI(base_url=model_service.url + "/v1", api_key=UPSTREAM_KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def chat_model(gateway) -> ChatOpenAI:
    return ChatOpenAI(base_url=gateway.url + "/v1", api_key=gateway.api_key, model=MODEL, temperature=0,
                      max_tokens=24, max_retries=0, timeout=120, stream_usage=True)


def usage_row(gateway, request_id: str) -> dict:
    return wait_for(lambda: [r for r in usage_rows(gateway) if r.get("requestId") == request_id],
                    what=f"the usage row of {request_id}")[0]


# -- openai SDK: legacy text completions -------------------------------------------------------------
def test_text_completion_through_the_gateway_equals_the_model_service_answer(client, direct, gateway):
    expected = direct.completions.create(model=MODEL, prompt=PROMPT, max_tokens=8)
    reply = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=8,
                                      extra_headers={"X-Request-Id": "clients-text-1"})
    assert reply.object == "text_completion"
    assert reply.choices[0].text == expected.choices[0].text
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.model_dump() == expected.usage.model_dump()
    row = usage_row(gateway, "clients-text-1")
    assert (row["endpoint"], row["streamed"], row["promptTokens"], row["completionTokens"]) == (
        "completions", False, expected.usage.prompt_tokens, 8)


def test_streamed_text_completion_through_the_gateway(client, direct, gateway):
    expected = direct.completions.create(model=MODEL, prompt=PROMPT, max_tokens=8)
    chunks = list(client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=8, stream=True,
                                            stream_options={"include_usage": True},
                                            extra_headers={"X-Request-Id": "clients-text-2"}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == expected.choices[0].text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.model_dump() == expected.usage.model_dump()
    row = usage_row(gateway, "clients-text-2")
    assert (row["endpoint"], row["streamed"], row["completionTokens"]) == ("completions", True, 8)


# -- LangChain ---------------------------------------------------------------------------------------
def test_langchain_invoke_answers_as_the_openai_sdk_does(chat_model, client):
    expected = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}],
                                              temperature=0, max_tokens=24)
    message = chat_model.invoke(QUESTION)
    assert message.content == expected.choices[0].message.content
    assert "Paris" in message.content
    assert (message.usage_metadata["input_tokens"], message.usage_metadata["output_tokens"]) == (
        expected.usage.prompt_tokens, expected.usage.completion_tokens)


def test_langchain_stream_reassembles_the_same_answer(chat_model):
    whole = chat_model.invoke(QUESTION)
    chunks = list(chat_model.stream(QUESTION))
    assert len(chunks) > 2  # really streamed, not one block
    assert "".join(chunk.content for chunk in chunks) == whole.content
    usage = [chunk.usage_metadata for chunk in chunks if chunk.usage_metadata]
    assert [(u["input_tokens"], u["output_tokens"]) for u in usage] == [
        (whole.usage_metadata["input_tokens"], whole.usage_metadata["output_tokens"])]


def test_langchain_bind_tools_gets_a_valid_call(chat_model):
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        return f"sunny in {city}"

    # a named function: the model-service's grammar guarantees a call whose arguments meet the schema
    message = chat_model.bind_tools([get_weather], tool_choice="get_weather", max_tokens=128).invoke(
        "What is the weather in Paris?")
    assert [call["name"] for call in message.tool_calls] == ["get_weather"]
    assert list(message.tool_calls[0]["args"]) == ["city"]
    assert isinstance(message.tool_calls[0]["args"]["city"], str)
    assert message.response_metadata["finish_reason"] == "tool_calls"


def test_langchain_with_structured_output_parses(gateway):
    from pydantic import BaseModel

    class Capital(BaseModel):
        country: str
        city: str

    model = ChatOpenAI(base_url=gateway.url + "/v1", api_key=gateway.api_key, model=MODEL, temperature=0,
                       max_tokens=128, max_retries=0, timeout=120)
    answer = model.with_structured_output(Capital, method="json_schema", strict=True).invoke(QUESTION)
    assert isinstance(answer, Capital)
    assert isinstance(answer.country, str) and isinstance(answer.city, str)


def test_langchain_with_structured_output_of_unbounded_lists_parses_at_a_tight_budget(gateway):
    """Unbounded strings and a list the small model would extend until the budget cut it (then LangChain's
    parser raised): the model-service closes the document inside max_tokens."""
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        country: str
        population_millions: float
        landmarks: list[str]

    model = ChatOpenAI(base_url=gateway.url + "/v1", api_key=gateway.api_key, model=MODEL, temperature=0,
                       max_tokens=40, max_retries=0, timeout=120)
    answer = model.with_structured_output(City, method="json_schema", strict=True, include_raw=True).invoke(
        "Give Paris with all of its landmarks as JSON.")
    assert answer["parsing_error"] is None
    assert isinstance(answer["parsed"], City)
    assert answer["raw"].response_metadata["finish_reason"] == "stop"
    assert answer["raw"].usage_metadata["output_tokens"] <= 40


# -- Spring AI ---------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("mvn") is None, reason="Maven is not installed")
def test_spring_ai_chat_client_calls_and_streams_through_the_gateway(gateway):
    """clients/spring-ai-check's tests, against this module's gateway (Maven takes its dependencies from
    ~/.m2, downloading them from Maven Central the first time, as the gateway's own build does)."""
    result = subprocess.run(["mvn", "-B", "-ntp", "-q", "-Dstyle.color=never", "test",
                             f"-Dgateway.url={gateway.url}", f"-Dgateway.key={gateway.api_key}"],
                            cwd=SPRING_AI_CHECK, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    report = (SPRING_AI_CHECK / "target" / "surefire-reports"
              / "TEST-dev.llmrelay.clients.GatewayChatClientTest.xml").read_text()
    counts = {name: int(re.search(rf'<testsuite [^>]*\b{name}="(\d+)"', report).group(1))
              for name in ("tests", "failures", "errors", "skipped")}
    # call, stream, a @Tool method's call, .entity() of a record and of one with an unbounded list at 40 tokens
    assert counts == {"tests": 5, "failures": 0, "errors": 0, "skipped": 0}, report[:3000]
