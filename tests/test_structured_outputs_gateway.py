"""Structured outputs through the real gateway: `response_format` reaches the model-service unchanged
(the openai SDK's `parse` gets a validated object, streamed or not) and its 400 comes back as sent."""

from __future__ import annotations

import httpx
import openai
import pytest
from pydantic import BaseModel, Field

from stack import free_port, start_gateway, start_model_service

UPSTREAM_KEY = "ms-structured-secret"
MODEL = "smollm2-135m-instruct"
QUESTION = [{"role": "user", "content": "Give Alice, 30 years old, as JSON."}]


class Person(BaseModel):
    name: str = Field(max_length=20)
    age: int = Field(ge=0, le=120)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    with start_model_service(free_port(), {"MODEL_SERVICE_API_KEY": UPSTREAM_KEY}, log_dir=logs) as service, \
            start_gateway(free_port(), [service.url], {"GATEWAY_UPSTREAM_API_KEY": UPSTREAM_KEY}, log_dir=logs) as gw:
        yield gw


@pytest.fixture
def client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.api_key, max_retries=0, timeout=120)


def test_sdk_parse_through_the_gateway(client):
    completion = client.chat.completions.parse(model=MODEL, messages=QUESTION, response_format=Person,
                                               max_tokens=64)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.parsed == Person.model_validate_json(completion.choices[0].message.content)


def test_sdk_stream_through_the_gateway(client):
    with client.chat.completions.stream(model=MODEL, messages=QUESTION, response_format=Person,
                                        max_tokens=64) as stream:
        for _ in stream:
            pass
        completion = stream.get_final_completion()
    assert completion.choices[0].finish_reason == "stop"
    assert isinstance(completion.choices[0].message.parsed, Person)


def test_unsupported_schema_400_comes_through_the_gateway(gateway):
    response = httpx.post(gateway.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {gateway.api_key}"},
                          json={"model": MODEL, "messages": QUESTION, "max_tokens": 8, "response_format": {
                              "type": "json_schema", "json_schema": {"name": "s", "schema": {
                                  "type": "array", "uniqueItems": True}}}}, timeout=60)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("response_format", "unsupported_schema_feature")
    assert "uniqueItems" in error["message"]
