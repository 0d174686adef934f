"""Fixtures for the chat page tests: Debian's Chromium driven by Playwright, the real gateway
jar serving web/, and either the real model-service or the scripted upstream.

Chromium comes from apt (/usr/bin/chromium); `playwright install` is never needed.
Screenshots of every test land in tests/artifacts/ (gitignored), kept as CI artifacts.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

from chat_page import ADMIN_TOKEN, ARTIFACTS  # noqa: E402
from scripted_upstream import ScriptedUpstream  # noqa: E402
from stack import REPO, free_port, start_gateway, start_model_service  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MODEL_DIR = Path(os.environ.get("MODEL_SERVICE_MODEL_PATH", REPO / "models" / "smollm2-135m-instruct"))


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def scripted_upstream():
    with ScriptedUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def scripted_gateway(scripted_upstream, tmp_path_factory):
    """The real gateway in front of the scripted upstream (fault injection)."""
    env = {"GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN, "GATEWAY_HEALTH_INTERVAL": "300ms"}
    with start_gateway(free_port(), [scripted_upstream.url], env,
                       log_dir=tmp_path_factory.mktemp("logs")) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def model_service(tmp_path_factory):
    """The real model-service with the small default model, on a free port."""
    with start_model_service(free_port(), {"MODEL_SERVICE_MODEL_PATH": str(MODEL_DIR)},
                             log_dir=tmp_path_factory.mktemp("logs")) as service:
        yield service


@pytest.fixture(scope="module")
def real_gateway(model_service, tmp_path_factory):
    """The real gateway in front of the real model-service."""
    with start_gateway(free_port(), [model_service.url], {"GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN},
                       log_dir=tmp_path_factory.mktemp("logs")) as gateway:
        yield gateway


class PageProblems:
    """JavaScript errors and dialogs seen by a page: model output must never open a dialog."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("dialog", self._dialog)
        page.on("console", self._console)

    def _console(self, message):
        # The page must work within its own Content-Security-Policy.
        if message.type == "error" and "Content Security Policy" in message.text:
            self.errors.append(message.text)

    def _dialog(self, dialog):
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


def _new_page(browser, request, viewport):
    context = browser.new_context(viewport=viewport, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(60_000)
    problems = PageProblems(page)
    yield page, problems
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    finally:
        context.close()
    assert not problems.errors, f"JavaScript errors on the page: {problems.errors}"


@pytest.fixture
def page_and_problems(browser, request):
    yield from _new_page(browser, request, {"width": 1100, "height": 800})


@pytest.fixture
def phone_page_and_problems(browser, request):
    yield from _new_page(browser, request, {"width": 360, "height": 740})


@pytest.fixture
def open_page(browser, request):
    """open_page(locale) -> (page, problems): pages in a browser language of the test's choosing, each in
    its own context (its own cookies and localStorage); screenshots and the error check as above."""
    opened = []

    def open_(locale: str = "en-US", viewport: dict | None = None):
        context = browser.new_context(viewport=viewport or {"width": 1100, "height": 800}, locale=locale)
        page = context.new_page()
        page.set_default_timeout(60_000)
        problems = PageProblems(page)
        opened.append((context, page, problems))
        return page, problems

    yield open_
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    for index, (context, page, _) in enumerate(opened):
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}{'-' + str(index) if index else ''}.png"), full_page=True)
        finally:
            context.close()
    errors = [error for _, _, problems in opened for error in problems.errors]
    assert not errors, f"JavaScript errors on the page: {errors}"
