"""What a person does on the chat page, for the tests (a small page object)."""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"  # screenshots (gitignored)
ADMIN_TOKEN = "admin-token-for-browser-tests"

# Records every length the newest reply's text had, so a test can tell "grew step by step"
# from "appeared at once" without timing anything.
RECORD_GROWTH = """
() => {
  window.__replyLengths = [];
  const messages = document.getElementById('messages');
  new MutationObserver(() => {
    const replies = messages.querySelectorAll('.message.assistant .body');
    const last = replies[replies.length - 1];
    if (last) window.__replyLengths.push(last.textContent.length);
  }).observe(messages, { childList: true, subtree: true, characterData: true });
}
"""


class ChatPage:
    def __init__(self, page: Page, base_url: str):
        self.page = page
        self.base_url = base_url

    def open(self) -> "ChatPage":
        self.page.goto(self.base_url + "/")
        return self

    def login(self, api_key: str) -> "ChatPage":
        self.page.fill("#api-key", api_key)
        self.page.click("#login-button")
        expect(self.page.locator("#app-view")).to_be_visible()
        return self

    def send(self, text: str) -> None:
        self.page.fill("#prompt", text)
        self.page.press("#prompt", "Enter")

    @property
    def replies(self) -> Locator:
        return self.page.locator(".message.assistant")

    @property
    def user_messages(self) -> Locator:
        return self.page.locator(".message.user")

    def last_reply(self) -> Locator:
        return self.replies.last

    def wait_reply_status(self, status: str, timeout_ms: int = 120_000) -> Locator:
        reply = self.last_reply()
        expect(reply).to_have_attribute("data-status", status, timeout=timeout_ms)
        return reply

    def record_growth(self) -> None:
        self.page.evaluate(RECORD_GROWTH)

    def recorded_lengths(self) -> list[int]:
        return self.page.evaluate("window.__replyLengths || []")


def create_key(gateway_url: str, admin_token: str, **limits) -> str:
    """A fresh API key through the admin API (limits: requestsPerMinute, ...)."""
    request = urllib.request.Request(
        gateway_url + "/admin/keys", data=json.dumps({"name": "browser-test", **limits}).encode(),
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    for field in ("key", "apiKey", "plaintext"):
        if isinstance(body.get(field), str):
            return body[field]
    raise AssertionError(f"no plaintext key in the admin answer: {body}")
