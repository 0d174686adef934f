"""The README's screenshot of the operator console: the API keys with their limits and budget bars.

    .venv/bin/python tests/browser/console_screenshot.py   # writes docs/images/console.png

Starts the scripted upstream and the gateway (admin token set), creates three keys with budgets through
the admin API, spends part of each budget with real /v1 requests, then signs in to /console/ in Chromium
(en-US) and takes the keys section. Not a test: ~20 s on 2 cores.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import httpx  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from chat_page import ADMIN_TOKEN  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from console_page import AdminApi, ConsolePage  # noqa: E402
from scripted_upstream import ScriptedUpstream  # noqa: E402
from stack import REPO, free_port, start_gateway  # noqa: E402

OUT = REPO / "docs" / "images" / "console.png"
KEYS = [  # name, limits, budget, requests to spend
    ("team-search", {"requestsPerMinute": 120, "tokensPerMinute": 60000, "maxConcurrentStreams": 8},
     {"tokens": 2000, "period": "day"}, 30),
    ("team-support", {"requestsPerMinute": 60, "tokensPerMinute": 20000, "maxConcurrentStreams": 4},
     {"tokens": 1500, "period": "month"}, 12),
    ("batch-reports", {"requestsPerMinute": 30, "tokensPerMinute": 100000, "maxConcurrentStreams": 2},
     {"tokens": 400, "period": "total"}, 15),
]


def main() -> None:
    with ScriptedUpstream() as upstream, \
            start_gateway(free_port(), [upstream.url], {"GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN}) as gateway, \
            sync_playwright() as playwright:
        upstream.script("Paris is the capital of France, on the Seine, with about two million people.")
        admin = AdminApi(gateway.url)
        for name, limits, budget, requests in KEYS:
            key = admin.create_key(name, **limits, budget=budget)["key"]
            for i in range(requests):
                httpx.post(gateway.url + "/v1/chat/completions", timeout=30,
                           headers={"Authorization": f"Bearer {key}"},
                           json={"messages": [{"role": "user", "content": f"Question {i}: what is the capital of France?"}]})
        admin.patch(f"/admin/keys/{admin.key_named('bootstrap')['id']}", {"name": "demo"})
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 480}, locale="en-US").new_page()
        console = ConsolePage(page, gateway.url).open().login()
        expect(console.key_row("batch-reports")).to_have_count(1)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUT))
        print(f"wrote {OUT.relative_to(REPO)}")
        browser.close()
        admin.close()


if __name__ == "__main__":
    main()
