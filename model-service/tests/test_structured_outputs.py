"""Structured outputs through the real server and the openai SDK: whatever the small model would say,
the grammar makes every answer parse and validate, streamed or not, and leaves the other requests of
the same batch alone."""

from __future__ import annotations

import enum
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Literal

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

# Room for the longest answer: the grammar, not the limit, must end each one. Left unbounded, this
# model repeats list items and sentences until the limit (measured: a todo list, a forecast, a review
# comment), and no grammar can close a value the model keeps extending: the schemas below bound
# their arrays and free-text strings, as docs/structured-outputs.md advises.
MAX_TOKENS = 120


class Person(BaseModel):
    name: str
    age: int


class Point(BaseModel):
    x: float
    y: float


class Paint(BaseModel):
    color: Literal["red", "green", "blue"]


class Address(BaseModel):
    street: str
    city: str
    zip_code: str


class Customer(BaseModel):
    name: str
    address: Address


class TodoList(BaseModel):
    items: list[Annotated[str, Field(max_length=20)]] = Field(max_length=4)


class Scores(BaseModel):
    values: list[Annotated[int, Field(ge=0, le=100)]] = Field(max_length=5)


class Rating(BaseModel):
    stars: int = Field(ge=1, le=5)
    comment: str = Field(max_length=60)


class Temperature(BaseModel):
    celsius: float = Field(ge=-50, le=60)


class Flag(BaseModel):
    enabled: bool


class Profile(BaseModel):
    nickname: str | None
    age: int | None


class Line(BaseModel):
    product: str
    quantity: int = Field(ge=1)
    price: float = Field(ge=0)


class Order(BaseModel):
    id: int
    lines: list[Line] = Field(min_length=1, max_length=3)


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


class Ticket(BaseModel):
    priority: Priority
    title: str = Field(max_length=30)


class Department(BaseModel):
    name: str
    head: Person


class Company(BaseModel):
    name: str
    ceo: Person
    departments: list[Department] = Field(max_length=2)


class Book(BaseModel):
    title: str
    authors: list[str] = Field(max_length=3)
    year: int = Field(ge=1450, le=2030)
    isbn: str | None


class Day(BaseModel):
    day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    high: int
    low: int


class Weather(BaseModel):
    city: str
    forecast: list[Day] = Field(max_length=3)


class Matrix(BaseModel):
    rows: list[Annotated[list[int], Field(max_length=3)]] = Field(max_length=3)


class Event(BaseModel):
    name: str
    attendees: int = Field(ge=0)
    public: bool
    tags: list[str] = Field(max_length=3)


class Ingredient(BaseModel):
    name: str = Field(max_length=20)
    grams: float = Field(gt=0)


class Recipe(BaseModel):
    title: str
    servings: int = Field(ge=1, le=12)
    ingredients: list[Ingredient] = Field(max_length=3)


class Answer(BaseModel):
    answer: Literal["yes", "no"]
    confidence: float = Field(ge=0, le=1)


class Money(BaseModel):
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    amount: float = Field(ge=0)


SCHEMAS: list[tuple[type[BaseModel], str]] = [
    (Person, "Alice, 30 years old"), (Point, "the point (1.5, -2)"), (Paint, "a blue paint"),
    (Customer, "Bob who lives at 1 Main Street, Springfield, 12345"), (TodoList, "buy milk, call mom"),
    (Scores, "scores 90, 75 and 60"), (Rating, "a four-star review saying 'good'"),
    (Temperature, "a warm day of 25 degrees"), (Flag, "the feature is on"), (Profile, "someone with no nickname"),
    (Order, "order 7: two apples at 0.5 each"), (Ticket, "an urgent ticket 'server down'"),
    (Company, "Acme, CEO Carol (50), one department Sales headed by Dan (40)"),
    (Book, "Dune by Frank Herbert, 1965"), (Weather, "Paris: Monday high 20 low 12"),
    (Matrix, "the 2x2 identity matrix"), (Event, "a public meetup for 20 people tagged python"),
    (Recipe, "pancakes for 2 with 200 grams of flour"), (Answer, "yes, quite sure"),
    (Money, "12 euros"),
]


def ask(client, model: type[BaseModel], what: str, stream: bool):
    messages = [{"role": "user", "content": f"Give {what} as JSON."}]
    if stream:
        with client.chat.completions.stream(model="", messages=messages, response_format=model,
                                            max_tokens=MAX_TOKENS) as events:
            for _ in events:
                pass
            completion = events.get_final_completion()
    else:
        try:
            completion = client.chat.completions.parse(model="", messages=messages, response_format=model,
                                                       max_tokens=MAX_TOKENS)
        except openai.LengthFinishReasonError as exc:  # reported with the others, by schema
            completion = exc.completion
    choice = completion.choices[0]
    return choice.finish_reason, choice.message.parsed, choice.message.content


def test_sdk_parse_twenty_schemas_streamed_and_not_all_valid(client):
    client = client.with_options(timeout=900)  # 40 answers share two cores: minutes for the last one
    cases = [(model, what, stream) for stream in (False, True) for model, what in SCHEMAS]
    with ThreadPoolExecutor(len(cases)) as pool:  # all in one batch, as a busy server sees them
        results = list(pool.map(lambda case: ask(client, *case), cases))
    for (model, _, stream), (finish_reason, parsed, content) in zip(cases, results):
        assert finish_reason == "stop", (model.__name__, stream, content)
        assert isinstance(parsed, model), (model.__name__, content)
        assert model.model_validate_json(content) == parsed


OPTIONAL_FIELDS = {"type": "object", "properties": {
    "id": {"type": "integer", "minimum": 1, "maximum": 9},
    "label": {"type": "string", "maxLength": 12},
    "note": {"type": "string", "maxLength": 12}},
    "required": ["id"], "additionalProperties": False}


def chat(http, response_format, *, stream=False, content="Give a labelled item as JSON.", max_tokens=MAX_TOKENS):
    return http.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens, "stream": stream,
        "response_format": response_format})


def test_json_schema_with_optional_fields_validates(http):
    body = chat(http, {"type": "json_schema", "json_schema": {"name": "item", "schema": OPTIONAL_FIELDS,
                                                              "strict": False}}).json()
    assert body["choices"][0]["finish_reason"] == "stop"
    jsonschema.validate(json.loads(body["choices"][0]["message"]["content"]), OPTIONAL_FIELDS)


def test_json_object_streamed_is_one_json_object(http):
    # An open object has no bound the grammar could force (asked to "describe a cat", this model adds
    # keys until the limit), so the prompt names what to give.
    response = chat(http, {"type": "json_object"}, stream=True,
                    content='Return a JSON object with the key "city" set to Paris.')
    assert response.status_code == 200
    events = [json.loads(line[6:]) for line in response.text.splitlines()
              if line.startswith("data: ") and line != "data: [DONE]"]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events)
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    assert json.loads(text) == {"city": "Paris"}


def test_unconstrained_requests_in_a_constrained_batch_answer_as_alone(http):
    plain = ["What is the capital of France?", "Count from 1 to 10."]

    def plain_answer(question):
        response = http.post("/v1/chat/completions", json={
            "messages": [{"role": "user", "content": question}], "max_tokens": 24, "temperature": 0})
        return response.json()["choices"][0]["message"]["content"]

    alone = [plain_answer(q) for q in plain]
    with ThreadPoolExecutor(6) as pool:
        constrained = [pool.submit(chat, http, {"type": "json_schema", "json_schema": {
            "name": "item", "schema": OPTIONAL_FIELDS}}) for _ in range(4)]
        together = list(pool.map(plain_answer, plain))
        bodies = [f.result().json() for f in constrained]
    assert together == alone
    for body in bodies:
        jsonschema.validate(json.loads(body["choices"][0]["message"]["content"]), OPTIONAL_FIELDS)


@pytest.mark.parametrize("response_format, param, code, words", [
    ({"type": "json_schema", "json_schema": {"name": "s", "schema": {
        "type": "array", "items": {"type": "integer"}, "uniqueItems": True}}},
     "response_format", "unsupported_schema_feature", "uniqueItems"),
    ({"type": "json_schema", "json_schema": {"name": "s", "schema": {
        "type": "object", "if": {"required": ["a"]}, "then": {"required": ["b"]}}}},
     "response_format", "unsupported_schema_feature", "if, then"),
    ({"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "strin"}}},
     "response_format", "invalid_schema", "strin"),
    ({"type": "json_schema", "json_schema": {"name": "s", "schema": {"$ref": "#/$defs/missing"}}},
     "response_format", "invalid_schema", "missing"),
    ({"type": "json_schema", "json_schema": {"name": "s", "schema": 5}},
     "response_format.json_schema.schema", "invalid_request", "schema"),
    ({"type": "json_schema"}, "response_format", "invalid_request", "json_schema"),
    ({"type": "json_schema", "json_schema": {"name": "has space", "schema": {}}},
     "response_format.json_schema.name", "invalid_request", "pattern"),
    ({"type": "xml"}, "response_format.type", "invalid_request", "json_object"),
], ids=["uniqueItems", "if-then", "bad-type", "dangling-ref", "schema-not-object", "no-json_schema",
        "bad-name", "unknown-type"])
def test_bad_response_format_is_400_naming_it(http, response_format, param, code, words):
    response = chat(http, response_format, max_tokens=8)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert words in error["message"]
