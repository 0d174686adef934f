"""Chat page against the real gateway and the real model-service (small model on CPU):
log in, send, watch the answer grow, stop mid-stream, reload and see the history, wrong key."""
from __future__ import annotations

import json
import re
import time
import urllib.request

from playwright.sync_api import expect

from chat_page import ChatPage


def test_wrong_key_shows_an_error(real_gateway, page_and_problems):
    page, _ = page_and_problems
    chat = ChatPage(page, real_gateway.url).open()
    expect(page.locator("#login-view")).to_be_visible()
    page.fill("#api-key", "sk-relay-not-a-real-key")
    page.click("#login-button")
    expect(page.locator("#login-error")).to_contain_text("not valid")
    expect(page.locator("#app-view")).to_be_hidden()
    chat.login(real_gateway.api_key)  # and the right key still works afterwards


def test_log_in_send_and_watch_the_answer_grow_then_reload_shows_history(real_gateway, page_and_problems):
    page, _ = page_and_problems
    chat = ChatPage(page, real_gateway.url).open().login(real_gateway.api_key)
    chat.record_growth()
    chat.send("What is the capital of France?")
    expect(chat.last_reply()).to_have_attribute("data-status", "streaming")
    reply = chat.wait_reply_status("complete")
    answer = reply.locator(".body").inner_text().strip()
    assert answer, "the model answered nothing"
    assert "paris" in answer.lower()

    # The text arrived in several steps, not all at once.
    lengths = [n for n in chat.recorded_lengths() if n > 0]
    assert len(set(lengths)) >= 3, f"reply text did not grow step by step: {lengths}"
    assert lengths == sorted(lengths), f"reply text shrank while streaming: {lengths}"

    page.reload()
    expect(chat.user_messages.last).to_have_text("What is the capital of France?")
    expect(chat.last_reply()).to_have_attribute("data-status", "complete")
    assert chat.last_reply().locator(".body").inner_text().strip() == answer
    expect(page.locator(".conversation-link").first).to_contain_text("What is the capital of France?")


def test_stop_mid_stream_stops_the_model_and_keeps_the_partial_answer(real_gateway, model_service,
                                                                    page_and_problems):
    page, _ = page_and_problems
    cancelled_before = _cancelled_count(model_service.url)
    chat = ChatPage(page, real_gateway.url).open().login(real_gateway.api_key)
    chat.send("Write a very long story about a lighthouse keeper and the sea. Use many paragraphs.")
    body = chat.last_reply().locator(".body")
    page.wait_for_function(
        "() => { const b = [...document.querySelectorAll('.message.assistant .body')].pop();"
        " return b && b.textContent.trim().split(/\\s+/).length >= 8; }")
    expect(page.locator("#stop")).to_be_visible()
    page.click("#stop")
    reply = chat.wait_reply_status("stopped")
    expect(reply.locator(".message-state")).to_have_text("Stopped")
    expect(page.locator("#send")).to_be_visible()
    partial = body.inner_text().strip()
    assert len(partial.split()) >= 8

    # The gateway kept the partial answer and marked it stopped.
    conversation_id = page.evaluate("location.hash.split('/').pop()")
    stored = _get_json(page, f"{real_gateway.url}/api/chat/conversations/{conversation_id}")
    last = stored["messages"][-1]
    assert last["status"] == "stopped"
    assert len(last["content"].split()) >= 8

    page.reload()
    expect(chat.last_reply()).to_have_attribute("data-status", "stopped")

    # The model-service itself counted the request as cancelled: generation really stopped.
    deadline = time.monotonic() + 60
    while _cancelled_count(model_service.url) <= cancelled_before:
        assert time.monotonic() < deadline, "model-service never saw the request cancelled"
        time.sleep(0.2)


def _get_json(page, url: str) -> dict:
    """GET with the page's session cookie (HttpOnly, so taken from the browser context)."""
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies(url))
    request = urllib.request.Request(url, headers={"Cookie": cookies})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _cancelled_count(model_service_url: str) -> float:
    with urllib.request.urlopen(model_service_url + "/metrics", timeout=30) as response:
        text = response.read().decode()
    match = re.search(r"^model_service_requests_cancelled_total(?:\{[^}]*\})? (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0
