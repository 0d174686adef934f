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

# Room for the longest answer: with bounded arrays and strings the grammar, not the budget, ends each
# one (the unbounded ones, which the budget ends, are further down).
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


# -- the budget: an answer finishes inside max_tokens ----------------------------------------------------
# Unbounded strings and lists, as users write them: left alone, this model extends a list until the budget
# cuts it (the City case: 120 tokens of landmarks, finish_reason "length", LengthFinishReasonError). With the
# closing (engine/json_closing.py) the grammar ends the document in time, so every one parses.
TIGHT_BUDGET = 48


class City(BaseModel):
    name: str
    country: str
    population_millions: float
    landmarks: list[str]


class Tags(BaseModel):
    tags: list[str]


class Rows(BaseModel):
    rows: list[list[str]]


class Letters(BaseModel):
    a: str
    b: str
    c: str
    d: str
    e: str
    f: str


class People(BaseModel):
    people: list[Person]


class Notes(BaseModel):
    kind: Literal["a", "b"]
    notes: list[str]


class Integers(BaseModel):
    values: list[int]


class Leaf(BaseModel):
    d: str


class Branch(BaseModel):
    c: Leaf


class Trunk(BaseModel):
    b: Branch


class Deep(BaseModel):
    a: Trunk


class Mixed(BaseModel):
    items: list[str | float]


class Verdict(BaseModel):
    ok: bool
    why: str


class Measure(BaseModel):
    value: float


class Colors(BaseModel):
    colors: list[Literal["red", "green", "blue"]]


class Team(BaseModel):
    name: str
    members: list[str]


class Org(BaseModel):
    name: str
    teams: list[Team]


class Review(BaseModel):
    title: str
    body: str
    pros: list[str]
    cons: list[str]


class Article(BaseModel):
    headline: str
    paragraphs: list[str]


class Plan(BaseModel):
    title: str
    steps: list[str]
    done: bool


class Glossary(BaseModel):
    terms: dict[str, str]


class Graph(BaseModel):
    edges: list[list[int]]


class Message(BaseModel):
    role: Literal["user", "assistant"]
    text: str


class Dialogue(BaseModel):
    messages: list[Message]


class Essay(BaseModel):
    text: str


UNBOUNDED: list[tuple[type[BaseModel], str]] = [
    (City, "Paris with all of its landmarks"), (Tags, "every tag you can think of for a travel blog"),
    (Rows, "a big table of fruit names"), (Letters, "six long words"), (People, "all the people in a big family"),
    (Notes, "many notes about cooking"), (Integers, "the first hundred prime numbers"),
    (Deep, "a nested description of a tree"), (Mixed, "a long list of words and numbers"),
    (Verdict, "a detailed explanation of why the sky is blue"), (Measure, "pi with many digits"),
    (Colors, "a long sequence of colors"), (Org, "a company with many teams and members"),
    (Review, "a long review of a phone"), (Article, "a long article about the sea"),
    (Plan, "a detailed plan with many steps for a trip"), (Glossary, "a glossary of computing terms"),
    (Graph, "the edges of a large graph"), (Dialogue, "a long conversation between two friends"),
    (Essay, "an essay about the moon"),
]


def ask_within(client, model: type[BaseModel], what: str, stream: bool, max_tokens: int):
    messages = [{"role": "user", "content": f"Give {what} as JSON."}]
    if stream:
        with client.chat.completions.stream(model="", messages=messages, response_format=model,
                                            max_tokens=max_tokens, stream_options={"include_usage": True}) as s:
            for _ in s:
                pass
            completion = s.get_final_completion()
    else:  # parse raises LengthFinishReasonError on a cut answer: that is the failure this guards against
        completion = client.chat.completions.parse(model="", messages=messages, response_format=model,
                                                   max_tokens=max_tokens)
    return completion


@pytest.mark.parametrize("stream", [False, True], ids=["parse", "stream"])
@pytest.mark.parametrize("max_tokens", [120, 40])
def test_city_with_unbounded_landmarks_finishes_within_the_budget(client, stream, max_tokens):
    completion = ask_within(client, City, "Paris with all of its landmarks", stream, max_tokens)
    choice = completion.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    assert isinstance(choice.message.parsed, City)
    assert completion.usage.completion_tokens <= max_tokens


def test_twenty_unbounded_schemas_all_parse_at_a_tight_budget(client):
    client = client.with_options(timeout=900)
    cases = [(model, what, stream) for stream in (False, True) for model, what in UNBOUNDED]
    with ThreadPoolExecutor(len(cases)) as pool:
        completions = list(pool.map(lambda case: ask_within(client, *case, TIGHT_BUDGET), cases))
    for (model, _, stream), completion in zip(cases, completions):
        choice = completion.choices[0]
        assert choice.finish_reason == "stop", (model.__name__, stream, choice.message.content)
        assert isinstance(choice.message.parsed, model), (model.__name__, choice.message.content)
        assert completion.usage.completion_tokens <= TIGHT_BUDGET


@pytest.mark.parametrize("max_tokens", [24, 60])
def test_a_required_tool_call_with_an_unbounded_list_finishes_within_the_budget(client, max_tokens):
    """Left alone, the model lists tags until the budget cuts the arguments ('{"tags": ["british", "japan",')."""
    tool = {"type": "function", "function": {"name": "save_tags", "parameters": {
        "type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
        "required": ["tags"]}}}
    completion = client.chat.completions.create(model="", messages=[{"role": "user", "content": (
        "Save every tag you can think of for a travel blog: beach, city, food, museum, hiking, and many more.")}],
        tools=[tool], tool_choice="required", max_tokens=max_tokens)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message
    arguments = json.loads(choice.message.tool_calls[0].function.arguments)
    jsonschema.validate(arguments, tool["function"]["parameters"])
    assert completion.usage.completion_tokens <= max_tokens


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_a_budget_below_the_shortest_answer_is_400_naming_it(http, param):
    """{"name":"","country":"","population_millions":0,"landmarks":[]} takes more than 5 tokens: refused up
    front instead of streaming a cut document."""
    response = http.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "Paris"}], param: 5, "response_format": {
            "type": "json_schema", "json_schema": {"name": "city", "schema": City.model_json_schema()}}})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, "max_tokens_too_small")
    assert "more than the 5 asked for" in error["message"]


def test_max_array_items_ends_a_list_the_model_would_repeat(client):
    """With room to spare (no closing needed), the list stops at the cap instead of filling the budget."""
    completion = client.chat.completions.parse(
        model="", messages=[{"role": "user", "content": "Give Paris with all of its landmarks as JSON."}],
        response_format=City, max_tokens=300, extra_body={"max_array_items": 2})
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert len(choice.message.parsed.landmarks) <= 2
    assert completion.usage.completion_tokens < 300


@pytest.mark.parametrize("value", [0, 1001, "two"])
def test_a_bad_max_array_items_is_400_naming_it(http, value):
    response = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                       "max_array_items": value})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "max_array_items"
