"""A generation failure that one request causes alone answers 422, never 500: the gateway must neither
retry it on another replica nor count it against this one. Faults are injected into the real engine
(serving the real small model in-process); the test names say so."""

from __future__ import annotations

import json

import httpx
import pytest

from model_service.config import Settings
from model_service.engine.detokenizer import StopStringMatcher
from model_service.main import create_app
from model_service.model_manager import ModelManager

POISONED = {"messages": [{"role": "user", "content": "Count from 1 to 10."}], "stop": ["POISON"], "max_tokens": 12}


@pytest.fixture(scope="module")
def app(model_dir):
    settings = Settings(model_path=model_dir, max_batch_size=4)
    manager = ModelManager(settings)
    manager.load()
    yield create_app(settings, manager=manager)
    manager.shutdown()


@pytest.fixture
def poisoned_stop_matching(monkeypatch):
    """Fault injection: the stop matcher of a request with the stop string "POISON" raises on its second feed."""
    real_feed = StopStringMatcher.feed

    def feed(self, delta):
        if "POISON" in self.stops:
            self.poison_feeds = getattr(self, "poison_feeds", 0) + 1
            if self.poison_feeds == 2:
                raise RuntimeError("injected stop matching fault")
        return real_feed(self, delta)

    monkeypatch.setattr(StopStringMatcher, "feed", feed)


async def post(app, body: dict) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://model") as client:
        return await client.post("/v1/chat/completions", json=body, timeout=120)


@pytest.mark.anyio
async def test_fault_injection_request_caused_failure_is_422(app, poisoned_stop_matching):
    response = await post(app, POISONED)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "request_generation_failed"
    assert "injected stop matching fault" in error["message"]
    healthy = await post(app, {**POISONED, "stop": None})
    assert healthy.status_code == 200 and healthy.json()["usage"]["completion_tokens"] == 12


@pytest.mark.anyio
async def test_fault_injection_request_caused_failure_in_a_stream_is_an_error_event(app, poisoned_stop_matching):
    response = await post(app, {**POISONED, "stream": True})
    events = [json.loads(e[len("data: "):]) for e in response.text.split("\n\n") if e.startswith("data: {")]
    assert events[-1]["error"]["code"] == "request_generation_failed"
    assert events[-1]["error"]["type"] == "invalid_request_error"
    assert response.text.endswith("data: [DONE]\n\n")


@pytest.fixture
def anyio_backend():
    return "asyncio"
