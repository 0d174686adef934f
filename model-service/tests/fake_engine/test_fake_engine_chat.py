"""/v1/chat/completions over a scripted engine: what serving makes of the engine's outputs (bodies, SSE frames,
usage, n choices), and of its faults (a failure at some token, a full queue, a client that leaves, an engine
that is not running), exactly."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from .conftest import LiveServer, client
from .engine import Script

HI = [{"role": "user", "content": "hi"}]
pytestmark = pytest.mark.anyio


def frames(text: str) -> list:
    events = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


async def test_the_answer_is_the_engine_s_text_and_the_prompt_is_the_chat_template(fake, tokenizer):
    app, engine = fake()
    async with client(app) as c:
        body = (await c.post("/v1/chat/completions", json={"messages": HI})).json()
    prompt = tokenizer.apply_chat_template(HI, add_generation_prompt=True)["input_ids"]
    assert [r.prompt_ids for r in engine.requests] == [prompt]
    assert (body["choices"][0]["message"], body["choices"][0]["finish_reason"]) == (
        {"role": "assistant", "content": "Hello, world."}, "stop")
    assert body["usage"] == {"prompt_tokens": len(prompt), "completion_tokens": 4, "total_tokens": len(prompt) + 4}


async def test_a_stream_is_role_then_one_frame_per_token_then_finish_then_usage(fake):
    app, _ = fake()
    async with client(app) as c:
        response = await c.post("/v1/chat/completions", json={
            "messages": HI, "stream": True, "stream_options": {"include_usage": True}})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = frames(response.text)
    assert [e["choices"][0]["delta"] if e["choices"] else None for e in events] == [
        {"role": "assistant", "content": ""}, {"content": "Hello"}, {"content": ","}, {"content": " world"},
        {"content": "."}, {}, None]
    assert [e["choices"][0].get("finish_reason") if e["choices"] else "usage" for e in events] == [
        None, None, None, None, None, "stop", "usage"]
    assert events[-1]["usage"]["completion_tokens"] == 4
    assert len({e["id"] for e in events}) == 1


async def test_max_tokens_cuts_the_answer_with_length(fake):
    app, engine = fake()
    async with client(app) as c:
        body = (await c.post("/v1/chat/completions", json={"messages": HI, "max_tokens": 2})).json()
    assert engine.requests[0].params.max_tokens == 2
    assert (body["choices"][0]["message"]["content"], body["choices"][0]["finish_reason"]) == ("Hello,", "length")
    assert body["usage"]["completion_tokens"] == 2


async def test_n_choices_are_separate_engine_requests_with_their_own_seeds(fake):
    app, engine = fake()
    async with client(app) as c:
        body = (await c.post("/v1/chat/completions", json={"messages": HI, "n": 3, "seed": 7})).json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    seeds = [r.params.seed for r in engine.requests]
    assert seeds[0] == 7 and len(set(seeds)) == 3
    assert [r.request_id.rsplit("-", 1)[1] for r in engine.requests] == ["0", "1", "2"]
    assert body["usage"]["completion_tokens"] == 12


@pytest.mark.parametrize("caused_by_request, status, code", [(True, 422, "request_generation_failed"),
                                                              (False, 500, "generation_error")])
async def test_fault_injection_a_failure_at_the_third_token(fake, caused_by_request, status, code):
    app, _ = fake(Script(fail_after=2, error="boom", caused_by_request=caused_by_request))
    async with client(app) as c:
        plain = await c.post("/v1/chat/completions", json={"messages": HI})
        streamed = await c.post("/v1/chat/completions", json={"messages": HI, "stream": True})
    assert plain.status_code == status
    assert plain.json() == {"error": {"message": "boom", "type": plain.json()["error"]["type"], "param": None,
                                      "code": code}}
    events = frames(streamed.text)  # the tokens before it, then the error in the same shape, then [DONE]
    assert [e["choices"][0]["delta"].get("content") for e in events[:-1]] == ["", "Hello", ","]
    assert events[-1]["error"]["code"] == code and events[-1]["error"]["message"] == "boom"


async def test_fault_injection_a_failed_choice_cancels_its_siblings(fake):
    scripts = iter([Script(fail_after=1), Script(delay_s=0.05)])
    app, engine = fake(lambda request: next(scripts))
    async with client(app) as c:
        response = await c.post("/v1/chat/completions", json={"messages": HI, "n": 2})
    assert response.status_code == 500
    assert engine.cancelled == [engine.requests[1].request_id]


async def test_fault_injection_a_full_queue_is_503_with_retry_after_and_keeps_no_choice(fake):
    app, engine = fake(Script(delay_s=0.2), max_queue=2)
    async with client(app) as c:
        response = await c.post("/v1/chat/completions", json={"messages": HI, "n": 3})
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(engine.retry_after_s)
    assert response.json()["error"]["code"] == "queue_full"
    assert sorted(engine.cancelled) == sorted(r.request_id for r in engine.requests)  # the two it took
    assert engine.stats().running == 0


async def test_fault_injection_an_engine_that_is_not_running_is_503_model_not_ready(fake):
    app, engine = fake()
    engine.shutdown()
    async with client(app) as c:
        response = await c.post("/v1/chat/completions", json={"messages": HI})
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    assert response.json()["error"]["code"] == "model_not_ready"
    assert engine.requests == []


@pytest.mark.parametrize("stream", [True, False])
def test_fault_injection_a_client_that_leaves_cancels_its_generation(fake, stream):
    app, engine = fake(Script(pieces=["x"] * 200, delay_s=0.02))
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=5) as http:
        if stream:
            with http.stream("POST", "/v1/chat/completions", json={"messages": HI, "stream": True}) as response:
                lines = response.iter_lines()
                while "Hello" not in (line := next(lines)) and '"x"' not in line:
                    pass
        else:
            with pytest.raises(httpx.ReadTimeout):
                http.post("/v1/chat/completions", json={"messages": HI}, timeout=0.3)
        for _ in range(500):  # the server notices the closed socket at its next write or receive
            if engine.cancelled:
                break
            time.sleep(0.01)
    assert engine.cancelled == [engine.requests[0].request_id]
    assert engine.finished[engine.requests[0].request_id] == "cancelled"
