"""Three real gateway jars sharing one real redis-server and one database: the limits hold across instances.

Upstreams are scripted (they report usage, so every reservation is settled): `fast` answers at once,
`slow` (the `slow` model's pool) streams for as long as a test wants to hold a concurrency slot.
Gateway A and C fail closed when Redis is gone, B fails open. The database is one H2 file opened by all
three (AUTO_SERVER: A, started first, serves it), so a key minted on A is the same key id on B and C.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest

from scripted_upstream import ScriptedUpstream
from stack import free_port, start_gateway, start_redis, wait_for

ADMIN_TOKEN = "admin-scale-out"
# 8 one-letter words: the gateway's prompt estimate ((15 chars + 3) / 4 + 4 per message) and the scripted
# upstream's count (words) are both 8, so a reservation of 8 + max_tokens is exactly what is used
PROMPT = [{"role": "user", "content": "a a a a a a a a"}]
PROMPT_TOKENS = 8
COMPLETION_TOKENS = 92          # chunks the fast upstream sends; each request uses 100 tokens
LEASE = "3s"                    # GATEWAY_LIMITS_STREAM_LEASE: a dead instance's slots free within it


@pytest.fixture(scope="module")
def upstreams():
    with ScriptedUpstream() as fast, ScriptedUpstream() as slow:
        fast.script(["x"] * COMPLETION_TOKENS)
        slow.script(["y"] * 600, delay_s=0.05)    # about 30 s: held until the test lets go
        yield fast, slow


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    port = free_port()
    # the test that stops Redis starts it again on this port; whichever runs last is stopped here
    state = {"server": start_redis(port, log_dir=tmp_path_factory.mktemp("redis"))}
    yield port, state
    state["server"].stop()


@pytest.fixture(scope="module")
def gateways(upstreams, redis_port, tmp_path_factory):
    fast, slow = upstreams
    port, _ = redis_port
    db = tmp_path_factory.mktemp("shared-db")
    logs = tmp_path_factory.mktemp("logs")
    common = {
        "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
        "GATEWAY_DB_URL": f"jdbc:h2:file:{db}/gateway;AUTO_SERVER=TRUE",
        "GATEWAY_LIMITS_STORE": "redis",
        "GATEWAY_REDIS_URL": f"redis://127.0.0.1:{port}",
        "GATEWAY_LIMITS_STREAM_LEASE": LEASE,
        # the bound on each Redis command: wider than the 500 ms default because this machine is shared
        # with other test runs; the tests are about exactness and outages, not the store's latency
        "GATEWAY_REDIS_TIMEOUT": "2s",
        # no /health probes: under 64 streams the one-process scripted upstream can answer a probe later
        # than its timeout, and an upstream marked down is not what these tests are about
        "GATEWAY_HEALTH_INTERVAL": "0",
    }

    def start(policy: str):
        env = {**common, "GATEWAY_LIMITS_ON_STORE_FAILURE": policy}
        return start_gateway(free_port(), [f"slow={slow.url}", fast.url], env, log_dir=logs)

    with ExitStack() as stack:
        a = stack.enter_context(start("fail-closed"))       # creates the schema and serves the H2 file
        with ThreadPoolExecutor(2) as pool:
            b, c = pool.map(start, ["fail-open", "fail-closed"])
        stack.enter_context(b)
        stack.enter_context(c)
        # each instance connects to Redis on its first admission: make that happen before the tests' bursts
        warm_up = mint_key(a, requestsPerMinute=100_000)
        for gateway in (a, b, c):
            wait_for(lambda: chat(gateway, warm_up).status_code == 200, timeout_s=60,
                     what=f"{gateway.url} to admit through Redis")
        yield a, b, c


def mint_key(gateway, **limits) -> str:
    return minted(gateway, **limits)["key"]


def minted(gateway, **limits) -> dict:
    """A new key (POST /admin/keys): its id and plaintext."""
    response = httpx.post(gateway.url + "/admin/keys", json={"name": "scale-out", **limits},
                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 201, response.text
    return response.json()


def usage_totals(gateway, key_id: int) -> dict:
    response = httpx.get(gateway.url + "/admin/usage", params={"keyId": key_id},
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    keys = response.json()["keys"]
    return keys[0] if keys else {}


def chat(gateway, key: str, **body) -> httpx.Response:
    return httpx.post(gateway.url + "/v1/chat/completions", timeout=60,
                      headers={"Authorization": f"Bearer {key}"},
                      json={"model": "scripted", "messages": PROMPT, "max_tokens": COMPLETION_TOKENS, **body})


def streamed_usage(gateway, key: str) -> tuple[int, dict | None, httpx.Response]:
    """One streamed completion read to the end: (status, the usage chunk's usage, response)."""
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", timeout=60,
                      headers={"Authorization": f"Bearer {key}"},
                      json={"model": "scripted", "messages": PROMPT, "max_tokens": COMPLETION_TOKENS,
                            "stream": True, "stream_options": {"include_usage": True}}) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, None, response
        usage, done = None, False
        for line in response.iter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                event = json.loads(line[6:])
                assert "error" not in event, event
                usage = event.get("usage") or usage
        assert done, "stream ended without [DONE]"
        return 200, usage, response


class Held:
    """A streamed completion of the `slow` model, open until close(): it holds one concurrency slot."""

    def __init__(self, gateway, key: str):
        self._client = httpx.Client(timeout=60)
        request = self._client.build_request(
            "POST", gateway.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
            json={"model": "slow", "messages": PROMPT, "max_tokens": 600, "stream": True})
        self.response = self._client.send(request, stream=True)
        self.status = self.response.status_code
        if self.status != 200:
            self.body = self.response.read().decode()

    def close(self) -> None:
        self.response.close()
        self._client.close()


def refused_for(response: httpx.Response, limit_message: str) -> bool:
    """A 429 in OpenAI shape naming the limit that was spent."""
    return (response.status_code == 429 and response.json()["error"]["code"] == "rate_limit_exceeded"
            and limit_message in response.json()["error"]["message"])


def hold_all(gateways_in_turn, key: str) -> list[Held] | None:
    """Opens one held stream per gateway; all of them, or (closing what opened) None."""
    held = [Held(g, key) for g in gateways_in_turn]
    if all(h.status == 200 for h in held):
        return held
    for h in held:
        assert h.status in (200, 429), h.body
        h.close()
    return None


def test_tokens_per_minute_across_three_instances_under_64_streams_never_overshoot(gateways):
    new_key = minted(gateways[0], requestsPerMinute=100_000, tokensPerMinute=10_000, maxConcurrentStreams=64)
    key = new_key["key"]

    def worker(index: int) -> tuple[int, list[str]]:
        """Streams through its instance until the key's tokens are spent: (tokens used, unexpected answers)."""
        gateway = gateways[index % 3]
        used, unexpected = 0, []
        while True:
            status, usage, response = streamed_usage(gateway, key)
            if status == 429 and "Token limit reached" in response.text:
                return used, unexpected
            if status != 200 or usage is None:
                unexpected.append(f"{status} {response.text[:200]} usage={usage}")
                return used, unexpected
            assert usage["prompt_tokens"] == PROMPT_TOKENS and usage["completion_tokens"] == COMPLETION_TOKENS
            used += usage["total_tokens"]

    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(worker, range(64)))
    assert [u for _, unexpected in results for u in unexpected] == []
    admitted = sum(used for used, _ in results)
    # every request reserves and uses 100 tokens: 10,000 admissible, not one token more admitted
    assert admitted <= 10_000
    assert admitted >= 9_500
    # the usage rows all three instances wrote into the one database say the same
    admitted_requests = admitted // (PROMPT_TOKENS + COMPLETION_TOKENS)
    totals = wait_for(lambda: (t := usage_totals(gateways[1], new_key["id"])).get("requests", 0)
                      - t.get("rateLimited", 0) >= admitted_requests and t, timeout_s=30, what="the usage rows")
    assert totals["promptTokens"] + totals["completionTokens"] == admitted
    assert totals["errors"] == 0
    # and the next request on any instance is refused for tokens
    for gateway in gateways:
        assert refused_for(chat(gateway, key), "Token limit reached")


def test_requests_per_minute_are_exact_across_instances(gateways):
    limit = 30
    key = mint_key(gateways[0], requestsPerMinute=limit, tokensPerMinute=1_000_000, maxConcurrentStreams=64)
    with ThreadPoolExecutor(limit) as pool:
        answers = list(pool.map(lambda i: chat(gateways[i % 3], key), range(limit)))
    assert [(r.status_code, r.text) for r in answers if r.status_code != 200] == []
    for gateway in gateways:
        response = chat(gateway, key)
        assert refused_for(response, f"Rate limit reached: {limit} requests per minute"), response.text
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert int(response.headers["Retry-After"]) >= 1


def sign_in(gateway, key: str) -> dict:
    """A browser session (POST /api/session): its cookie, good on every instance (one database)."""
    response = httpx.post(gateway.url + "/api/session", json={"apiKey": key})
    assert response.status_code == 204, response.text
    name, _, value = response.headers["set-cookie"].split(";", 1)[0].partition("=")
    return {name: value}


def browser_send(gateway, cookies: dict, content: str, conversation_id: str | None = None) -> dict:
    response = httpx.post(gateway.url + "/api/chat/messages", cookies=cookies, timeout=30,
                          json={"conversationId": conversation_id, "content": content})
    assert response.status_code == 200, response.text
    return response.json()


class ReplyStream:
    """GET /api/chat/messages/{id}/stream, read event by event: (id, event name, data as JSON)."""

    def __init__(self, gateway, cookies: dict, message_id: str, last_event_id: str | None = None):
        self._client = httpx.Client(timeout=60, cookies=cookies)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        request = self._client.build_request(
            "GET", f"{gateway.url}/api/chat/messages/{message_id}/stream", headers=headers)
        self.response = self._client.send(request, stream=True)
        assert self.response.status_code == 200, self.response.read()
        self._lines = self.response.iter_lines()

    def next(self) -> tuple[str, str, dict]:
        event_id, name, data = None, "message", None
        for line in self._lines:
            if line == "":
                if data is not None:
                    return event_id, name, json.loads(data)
                event_id, name = None, "message"     # a comment-only block (": ping")
            elif line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
        raise AssertionError("the reply stream ended before its finish event")

    def until_end(self) -> list[tuple[str, str, dict]]:
        events = []
        while not events or events[-1][1] not in ("finish", "error"):
            events.append(self.next())
        return events

    def close(self) -> None:
        """Drops the connection, as a browser that loses its network does."""
        self.response.close()
        self._client.close()


def test_browser_reply_sent_on_a_followed_on_b_resumed_on_c_and_stopped_from_b_scripted(gateways, upstreams):
    a, b, c = gateways
    fast, _ = upstreams
    key = mint_key(a, requestsPerMinute=100_000, tokensPerMinute=1_000_000, maxConcurrentStreams=8)
    cookies = sign_in(a, key)
    words = [f"w{i} " for i in range(40)]
    fast.script(words, delay_s=0.05)
    try:
        sent = browser_send(a, cookies, "Count for me")
        # B follows the reply A generates, then the connection drops after five tokens
        on_b = ReplyStream(b, cookies, sent["messageId"])
        first = [on_b.next() for _ in range(5)]
        on_b.close()
        # C resumes after the last event B delivered, to the end
        on_c = ReplyStream(c, cookies, sent["messageId"], last_event_id=first[-1][0])
        rest = on_c.until_end()
        on_c.close()
    finally:
        fast.script(["x"] * COMPLETION_TOKENS)
    events = first + rest
    assert [int(event_id) for event_id, _, _ in events] == list(range(1, len(events) + 1))
    assert [name for _, name, _ in events] == ["token"] * (len(events) - 1) + ["finish"]
    assert "".join(data["text"] for _, name, data in events if name == "token") == "".join(words)
    assert events[-1][2]["finish_reason"] == "stop"

    # a long reply generated on A, followed on B and stopped from B: A cancels its upstream call
    fast.script(["y "] * 600, delay_s=0.05)     # 30 s at 20 chunks/s if nobody stops it
    try:
        disconnects, completed = fast.disconnects, fast.completed
        sent = browser_send(a, cookies, "Go on forever", conversation_id=sent["conversationId"])
        on_b = ReplyStream(b, cookies, sent["messageId"])
        assert on_b.next()[1] == "token"
        cancel = httpx.post(f"{b.url}/api/chat/messages/{sent['messageId']}/cancel", cookies=cookies)
        assert cancel.status_code == 204, cancel.text
        written_at_cancel = fast.chunks_written
        end = on_b.until_end()[-1]
        on_b.close()
        assert end[1] == "finish" and end[2]["finish_reason"] == "stopped"
        wait_for(lambda: fast.disconnects == disconnects + 1, timeout_s=30,
                 what="the upstream to see its stream cancelled")
        # within 1 s of the stop, on the upstream's own pace (20 chunks/s): at most 20 chunks more
        assert fast.chunks_written - written_at_cancel <= 20
        assert fast.completed == completed
    finally:
        fast.script(["x"] * COMPLETION_TOKENS)


def test_concurrency_slots_freed_after_streams_end_fail_or_their_instance_is_killed_scripted(
        gateways, upstreams):
    a, b, c = gateways
    fast, _ = upstreams
    key = mint_key(a, requestsPerMinute=100_000, tokensPerMinute=1_000_000, maxConcurrentStreams=2)

    # streams that end: one after another on every instance, more than the slots there are
    for gateway in [a, b, c, a, b, c]:
        status, usage, response = streamed_usage(gateway, key)
        assert status == 200, response.text

    # streams that fail (scripted upstream 500): each frees its slot too
    fast.script(["x"] * COMPLETION_TOKENS, status=500)
    try:
        for gateway in gateways:
            response = chat(gateway, key, stream=True)
            assert response.status_code not in (200, 429), response.text
    finally:
        fast.script(["x"] * COMPLETION_TOKENS)

    # so both slots are free, and only two: a third stream on another instance is refused
    held = hold_all([a, b], key)
    assert held is not None, "a slot was still taken after streams that ended or failed"
    third = Held(c, key)
    assert third.status == 429 and "Too many concurrent streams" in third.body, third.body
    third.close()

    # streams the client closes: their slots come back (released when the gateway notices)
    for h in held:
        h.close()
    held = wait_for(lambda: hold_all([b, c], key), timeout_s=30, what="the closed streams' slots")
    third = Held(a, key)
    assert third.status == 429, third.body
    third.close()

    # streams whose instance is killed: the slots are held until their lease lapses, then free
    for h in held:
        h.close()
    held_on_c = wait_for(lambda: hold_all([c, c], key), timeout_s=30, what="two slots on C")
    refused = Held(a, key)
    assert refused.status == 429, refused.body
    refused.close()
    c.kill()
    for h in held_on_c:
        h.close()
    held = wait_for(lambda: hold_all([a, b], key), timeout_s=30,
                    what=f"the killed instance's slots to lapse (lease {LEASE})")
    third = Held(b, key)
    assert third.status == 429, third.body
    third.close()
    for h in held:
        h.close()


def test_redis_stopped_mid_run_fail_closed_503_fail_open_served_both_recover(
        gateways, upstreams, redis_port, tmp_path):
    closed, open_, _ = gateways     # C may have been killed by the test above
    port, state = redis_port
    _, slow = upstreams
    key = mint_key(closed, requestsPerMinute=100_000, tokensPerMinute=1_000_000, maxConcurrentStreams=8)
    assert chat(closed, key).status_code == 200
    assert chat(open_, key).status_code == 200
    slow.script(["y"] * 40, delay_s=0.05)
    try:
        in_flight = Held(closed, key)
    finally:
        slow.script(["y"] * 600, delay_s=0.05)
    assert in_flight.status == 200, in_flight.body

    state["server"].stop()
    try:
        for _ in range(3):
            response = chat(closed, key)
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "limits_unavailable"
            assert int(response.headers["Retry-After"]) >= 1
            assert chat(open_, key).status_code == 200
        # a stream admitted before Redis went away runs to its end (its settle is dropped, not an error)
        events = [line[6:] for line in in_flight.response.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        assert all("error" not in json.loads(event) for event in events[:-1])
        assert "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                       for e in events[:-1] if json.loads(e)["choices"]) == "y" * 40
    finally:
        in_flight.close()
        state["server"] = start_redis(port, log_dir=tmp_path)

    def served_again() -> bool:
        response = chat(closed, key)
        assert response.status_code in (200, 503), response.text    # never a 500 while it reconnects
        if response.status_code == 503:
            assert response.headers.get("Retry-After")
        return response.status_code == 200

    wait_for(served_again, timeout_s=60, what="the fail-closed instance to use Redis again")
    assert chat(open_, key).status_code == 200
