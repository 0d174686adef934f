"""Many users on one model: batching, cancellation on disconnect, and backpressure."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from conftest import API_KEY
from stack import free_port, metric_value, start_model_service, wait_for

LONG = [{"role": "user", "content": "Write a very long story about a dragon who learns to bake bread."}]


def metrics(url: str) -> str:
    return httpx.get(url + "/metrics").text


def test_sixteen_concurrent_streams_complete_and_overlap(async_client):
    async def one(i: int):
        stream = await async_client.chat.completions.create(
            model="smollm2-135m-instruct", messages=[{"role": "user", "content": f"Tell me fact number {i} "
                                                      "about the ocean."}], stream=True, max_tokens=24)
        first = None
        text = ""
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                first = first or time.monotonic()
                text += chunk.choices[0].delta.content
        return first, time.monotonic(), text

    async def run():
        return await asyncio.gather(*[one(i) for i in range(16)])

    results = asyncio.run(run())
    assert all(text for _, _, text in results)
    # Every stream produced its first token before any stream had finished: they ran together.
    assert max(first for first, _, _ in results) < min(end for _, end, _ in results)


def test_stream_disconnect_frees_the_slot(server):
    before = metric_value(metrics(server.url), "model_service_requests_cancelled_total")
    with httpx.Client(timeout=60) as c:
        with c.stream("POST", server.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {API_KEY}"},
                      json={"messages": LONG, "stream": True, "max_tokens": 600}) as response:
            lines = response.iter_lines()
            seen = 0
            for line in lines:
                if line.startswith("data: ") and '"content":"' in line and '"content":""' not in line:
                    seen += 1
                if seen >= 3:
                    break
            assert metric_value(metrics(server.url), "model_service_running_batch_size") >= 1
    # Leaving the `with` closed the connection mid-stream.
    wait_for(lambda: metric_value(metrics(server.url), "model_service_requests_cancelled_total") > before,
             what="the cancellation to be counted")
    wait_for(lambda: metric_value(metrics(server.url), "model_service_running_batch_size") == 0,
             what="the batch to shrink")


def test_aborted_non_stream_request_is_cancelled(server):
    before = metric_value(metrics(server.url), "model_service_requests_cancelled_total")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {API_KEY}"},
                   json={"messages": LONG, "max_tokens": 600}, timeout=httpx.Timeout(60, read=1.0))
    wait_for(lambda: metric_value(metrics(server.url), "model_service_requests_cancelled_total") > before,
             what="the cancellation to be counted")
    wait_for(lambda: metric_value(metrics(server.url), "model_service_running_batch_size") == 0,
             what="the batch to shrink")


def test_full_queue_gives_503_with_retry_after():
    env = {"MODEL_SERVICE_MAX_BATCH_SIZE": "1", "MODEL_SERVICE_MAX_QUEUE": "1"}
    with start_model_service(free_port(), env, timeout_s=180) as small, httpx.Client(timeout=60) as c:
        body = {"messages": LONG, "stream": True, "max_tokens": 600}
        url = small.url + "/v1/chat/completions"
        with c.stream("POST", url, json=body) as running:
            running_lines = running.iter_lines()  # keep a reference: a collected iterator closes the stream
            next(running_lines)
            wait_for(lambda: metric_value(metrics(small.url), "model_service_running_batch_size") == 1,
                     what="the first request to run")
            with c.stream("POST", url, json=body) as waiting:
                assert waiting.status_code == 200
                wait_for(lambda: metric_value(metrics(small.url), "model_service_queue_depth") == 1,
                         what="the second request to wait")
                rejected = c.post(url, json=body)
                assert rejected.status_code == 503
                assert int(rejected.headers["retry-after"]) >= 1
                error = rejected.json()["error"]
                assert error["code"] == "queue_full" and error["type"] == "service_unavailable"
        # Both streams closed: the server is free again and answers.
        ok = c.post(url, json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        assert ok.status_code == 200


@pytest.mark.parametrize("poison", [{"temperature": 2.0, "top_p": 5e-324}, {"temperature": 1e-45}])
def test_poisoned_sampling_values_among_eight_streams_harm_nobody(server, poison):
    """Sampling values at the schema's edges once failed every co-batched stream; now all nine answer,
    and the poisoned one answers like greedy (its only choice is the top token)."""
    questions = [f"Tell me fact number {i} about the ocean." for i in range(8)]

    async def one(client: openai.AsyncOpenAI, question: str, extra: dict):
        stream = await client.chat.completions.create(
            model="smollm2-135m-instruct", messages=[{"role": "user", "content": question}], stream=True,
            max_tokens=16, **extra)
        text, reasons = "", []
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                reasons += [chunk.choices[0].finish_reason] if chunk.choices[0].finish_reason else []
        return text, reasons

    async def run(with_poison: bool):
        async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0,
                                      timeout=120) as client:
            healthy = [one(client, q, {}) for q in questions]
            poisoned = [one(client, questions[0], {"seed": 5, **poison})] if with_poison else []
            return await asyncio.gather(*poisoned, *healthy, return_exceptions=True)

    alone = asyncio.run(run(with_poison=False))  # the reference: the same greedy requests, no poison
    assert all(reasons == ["length"] or reasons == ["stop"] for _, reasons in alone)
    poisoned, *healthy = asyncio.run(run(with_poison=True))
    assert healthy == alone
    assert poisoned == alone[0]
