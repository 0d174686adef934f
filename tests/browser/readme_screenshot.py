"""The README's screenshot of the chat page in Chinese with the Chinese model answering.

    .venv/bin/python tests/browser/readme_screenshot.py   # writes docs/images/chat-zh-CN.png

Starts both models' model-services (SmolLM2 and Qwen2.5-Coder-0.5B, from `make model` and
`make model MODEL=qwen2.5-coder-0.5b-instruct`), the gateway with one pool per model, and
Chromium in a zh-CN locale; asks "你好，你是谁？" on the Qwen model. Not a test: ~1-2 min on 2 cores.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from chat_page import ChatPage  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from stack import REPO, free_port, start_gateway, start_model_service  # noqa: E402

MODELS = ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"]
OUT = REPO / "docs" / "images" / "chat-zh-CN.png"


def main() -> None:
    services = [start_model_service(free_port(), {"MODEL_SERVICE_MODEL_PATH": str(REPO / "models" / name),
                                                  "MODEL_SERVICE_DTYPE": "auto",
                                                  "MODEL_SERVICE_DEFAULT_MAX_TOKENS": "120"})
                for name in MODELS]
    try:
        with start_gateway(free_port(), [f"{name}={s.url}" for name, s in zip(MODELS, services)]) as gateway, \
                sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1000, "height": 640}, locale="zh-CN")
            page = context.new_page()
            page.set_default_timeout(180_000)
            chat = ChatPage(page, gateway.url).open().login(gateway.api_key)
            page.locator("#model").select_option(MODELS[1])
            chat.send("你好，你是谁？")
            chat.wait_reply_status("complete", timeout_ms=300_000)
            chat.send("请用中文介绍一下北京。")
            expect(chat.replies).to_have_count(2)
            chat.wait_reply_status("complete", timeout_ms=300_000)
            OUT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(OUT))
            print(f"wrote {OUT.relative_to(REPO)}")
            for reply in chat.replies.all():
                print("reply:", reply.locator(".body").inner_text()[:200])
            browser.close()
    finally:
        for service in services:
            service.stop()


if __name__ == "__main__":
    main()
