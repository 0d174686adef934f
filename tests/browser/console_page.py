"""What an operator does on the console (web/console/, served at /console/), for the tests: a small
page object, and the admin API through the admin token (httpx) to check what the console changed."""
from __future__ import annotations

import json
import secrets
import time

import httpx
from playwright.sync_api import Page, expect

from chat_page import ADMIN_TOKEN

# The console's own strings for the labels the tests read, per browser language (web/console/js/i18n.js).
LABELS = {
    "en-US": {"lang": "en", "title": "llm-relay console", "login": "Log in", "keys": "API keys", "usage": "Usage",
              "upstreams": "Upstreams", "controls": "Controls", "logout": "Log out", "new": "New key",
              "wrong": "That admin token is not valid.", "once": "it is shown only once", "copied": "Copied",
              "healthy": "healthy", "switch": "中文"},
    "zh-CN": {"lang": "zh-CN", "title": "llm-relay 控制台", "login": "登录", "keys": "API 密钥", "usage": "用量",
              "upstreams": "上游副本", "controls": "运维控制", "logout": "退出登录", "new": "新建密钥",
              "wrong": "该管理令牌无效。", "once": "它只显示这一次", "copied": "已复制", "healthy": "健康",
              "switch": "English"},
}


def unique_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


class AdminApi:
    """The admin API with the admin token (not the console's cookie): what the gateway really holds."""

    def __init__(self, base_url: str):
        self.client = httpx.Client(base_url=base_url, timeout=30,
                                   headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def get(self, path: str, **params):
        response = self.client.get(path, params=params or None)
        response.raise_for_status()
        return response.json()

    def key(self, key_id: int) -> dict:
        return self.get(f"/admin/keys/{key_id}")

    def key_named(self, name: str) -> dict:
        matches = [k for k in self.get("/admin/keys") if k["name"] == name]
        assert len(matches) == 1, f"{len(matches)} keys named {name}"
        return matches[0]

    def create_key(self, name: str, **fields) -> dict:
        response = self.client.post("/admin/keys", json={"name": name, **fields})
        assert response.status_code == 201, response.text
        return response.json()

    def patch(self, path: str, body: dict) -> httpx.Response:
        return self.client.patch(path, json=body)

    def put(self, path: str, body: dict) -> httpx.Response:
        return self.client.put(path, json=body)

    def delete(self, path: str) -> httpx.Response:
        return self.client.delete(path)

    def close(self) -> None:
        self.client.close()


class ConsolePage:
    def __init__(self, page: Page, base_url: str):
        self.page = page
        self.base_url = base_url

    def open(self, path: str = "/console/") -> "ConsolePage":
        self.page.goto(self.base_url + path)
        expect(self.page.locator("body")).to_have_attribute("data-ready", "true")
        return self

    def login(self, token: str = ADMIN_TOKEN) -> "ConsolePage":
        self.page.fill("#admin-token", token)
        self.page.click("#login-button")
        expect(self.page.locator("#app-view")).to_be_visible()
        return self

    def tab(self, name: str) -> None:
        self.page.click(f"a[data-tab={name}]")
        expect(self.page.locator(f"#{name}-view")).to_be_visible()

    def key_row(self, name: str):
        return self.page.locator(f"#keys-body tr[data-key-name='{name}']")

    def fill_key_form(self, *, name: str | None = None, rpm=None, tpm=None, streams=None,
                      budget_period: str | None = None, budget_tokens=None) -> None:
        if name is not None:
            self.page.fill("#key-name", name)
        for selector, value in (("#key-rpm", rpm), ("#key-tpm", tpm), ("#key-streams", streams)):
            if value is not None:
                self.page.fill(selector, str(value))
        if budget_period is not None:
            self.page.select_option("#key-budget-period", budget_period)
        if budget_tokens is not None:
            self.page.fill("#key-budget-tokens", str(budget_tokens))

    def create_key(self, name: str, **fields) -> str:
        """Creates a key through the form; returns the plaintext the console shows (once)."""
        self.page.click("#key-new")
        self.fill_key_form(name=name, **fields)
        self.page.click("#key-form-submit")
        expect(self.page.locator("#new-key")).to_be_visible()
        expect(self.key_row(name)).to_have_count(1)
        return self.page.text_content("#new-key-value")

    def chart_series(self, metric: str) -> dict[str, list]:
        return json.loads(self.page.get_attribute(f"#chart-{metric}", "data-series") or "{}")

    def wait_usage(self, predicate, timeout_s: float = 45) -> dict[str, dict]:
        """Refreshes the usage view until predicate(series by metric) holds (usage is recorded as requests
        end, a moment after the answer); returns the last series seen."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.page.click("#usage-refresh")
            expect(self.page.locator("#usage-view")).to_have_attribute("data-state", "ready")
            series = {m: self.chart_series(m) for m in ("requests", "tokens", "errors", "ttft")}
            if predicate(series) or time.monotonic() > deadline:
                return series
            self.page.wait_for_timeout(500)
