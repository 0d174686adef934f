"""Chat page against the real gateway and a scripted upstream: replies and faults the real
model would not produce on demand (HTML and script in a reply, 503, exact text to compare).
Every test here says "scripted" in its name."""
from __future__ import annotations

import re
import time
import urllib.request

from playwright.sync_api import expect

from chat_page import ADMIN_TOKEN, ARTIFACTS, ChatPage, create_key
from droppable_proxy import DroppableProxy

# Logs every event id the page's EventSource receives, before the page's own listeners run.
RECORD_EVENT_IDS = """
(() => {
  const Native = window.EventSource;
  window.__events = [];
  window.__opens = 0;
  window.EventSource = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("open", () => window.__opens++);
      for (const name of ["token", "finish"]) {
        this.addEventListener(name, (e) => window.__events.push([name, e.lastEventId]));
      }
    }
  };
})();
"""

HOSTILE_REPLY = (
    'Here you go: <img src="x" onerror="window.__xss = 1; alert(1)"> and '
    "<script>window.__xss = 2; alert(2)</script>\n\n"
    "[click me](javascript:window.__xss=3) and <a href=\"javascript:alert(3)\">link</a>\n\n"
    "```html\n<b>bold?</b><script>alert(4)</script>\n```\n"
)


def test_scripted_reply_with_html_and_script_shows_as_text_and_runs_nothing(
        scripted_gateway, scripted_upstream, page_and_problems):
    page, problems = page_and_problems
    scripted_upstream.script(HOSTILE_REPLY)
    chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
    chat.send("Show me some HTML")
    reply = chat.wait_reply_status("complete")

    body = reply.locator(".body")
    expect(body).to_contain_text('<img src="x" onerror="window.__xss = 1; alert(1)">')
    expect(body).to_contain_text("<script>window.__xss = 2; alert(2)</script>")
    expect(body.locator("pre code")).to_have_text("<b>bold?</b><script>alert(4)</script>")
    assert reply.locator("img, script, b, iframe, [onerror]").count() == 0
    assert reply.locator('a[href^="javascript:"]').count() == 0
    assert page.locator("#messages script").count() == 0
    assert page.evaluate("window.__xss") is None
    assert problems.dialogs == []


def test_scripted_markdown_renders_with_copy_buttons_on_reply_and_code(
        scripted_gateway, scripted_upstream, browser, request):
    scripted_upstream.script(["## Steps\n\n", "1. **Install** it\n", "2. Run `make`\n\n",
                              "```sh\n", "make run\n", "```\n\n",
                              "| Port | Tier |\n", "|---:|---|\n", "| 8888 | gateway |\n"])
    context = browser.new_context(viewport={"width": 1100, "height": 800},
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
        chat.send("How do I start it?")
        reply = chat.wait_reply_status("complete")
        expect(reply.locator("h2")).to_have_text("Steps")
        expect(reply.locator("ol li strong")).to_have_text("Install")
        expect(reply.locator("li code")).to_have_text("make")
        expect(reply.locator("table th")).to_have_text(["Port", "Tier"])
        expect(reply.locator("table td").first).to_have_text("8888")

        reply.locator(".copy-code").click()
        expect(reply.locator(".copy-code")).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == "make run"
        reply.locator(".copy-reply").click()
        assert page.evaluate("navigator.clipboard.readText()").startswith("## Steps")
        page.screenshot(path=str(_artifact(request)), full_page=True)
    finally:
        context.close()


def test_scripted_enter_sends_and_shift_enter_adds_a_newline(scripted_gateway, scripted_upstream, page_and_problems):
    page, _ = page_and_problems
    scripted_upstream.script("Got both lines.")
    chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
    page.click("#prompt")
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("第二行")
    assert chat.user_messages.count() == 0  # Shift+Enter did not send
    # Enter that confirms an IME composition (Chinese input) only confirms the characters.
    page.eval_on_selector("#prompt", """el => el.dispatchEvent(new KeyboardEvent("keydown",
        { key: "Enter", isComposing: true, bubbles: true, cancelable: true }))""")
    assert chat.user_messages.count() == 0
    page.keyboard.press("Enter")
    chat.wait_reply_status("complete")
    expect(chat.user_messages.last).to_have_text("first line\n第二行")
    assert scripted_upstream.requests[-1]["messages"][-1]["content"] == "first line\n第二行"
    expect(page.locator("#prompt")).to_have_value("")


def test_scripted_reload_mid_stream_replays_the_reply_without_duplicates(
        scripted_gateway, scripted_upstream, page_and_problems):
    page, _ = page_and_problems
    words = [f" w{i}" for i in range(1, 41)]
    scripted_upstream.script(words, delay_s=0.1)
    chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
    chat.send("Count to forty")
    expect(chat.last_reply().locator(".body")).to_contain_text("w3")
    page.reload()
    reply = chat.wait_reply_status("complete")
    expect(reply.locator(".body")).to_have_text("".join(words).strip())


def test_scripted_dropped_connection_resumes_after_last_event_id_with_nothing_repeated_or_lost(
        scripted_gateway, scripted_upstream, page_and_problems):
    page, _ = page_and_problems
    words = [f" d{i}" for i in range(1, 31)]
    scripted_upstream.script(words, delay_s=0.1)
    proxy = DroppableProxy(scripted_gateway.port)
    try:
        page.add_init_script(RECORD_EVENT_IDS)
        chat = ChatPage(page, proxy.url).open().login(scripted_gateway.api_key)
        chat.send("Count for me")
        expect(chat.last_reply().locator(".body")).to_contain_text("d5")
        assert proxy.drop_all() > 0  # the network drops under the open stream
        reply = chat.wait_reply_status("complete")
        expect(reply.locator(".body")).to_have_text("".join(words).strip())
        events = page.evaluate("window.__events")
        ids = [int(event_id) for _, event_id in events]
        assert ids == list(range(1, len(words) + 2)), f"event ids seen: {ids}"
        assert events[-1][0] == "finish"
        assert page.evaluate("window.__opens") >= 2, "EventSource never reconnected"
    finally:
        proxy.close()


def test_scripted_upstream_503_shows_a_clear_error(scripted_gateway, scripted_upstream, page_and_problems):
    page, _ = page_and_problems
    scripted_upstream.script("unused", status=503, retry_after="7")
    try:
        chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
        chat.send("Anyone there?")
        # Either the POST is refused (503 notice) or the stream ends with an error event.
        failure = page.locator("#notice:visible, .message.assistant[data-status='error'] .message-state")
        expect(failure.first).to_contain_text("unavailable", ignore_case=True)
    finally:
        scripted_upstream.script("Hello again.")


def test_scripted_model_service_down_shows_unavailable_with_the_wait_time(
        scripted_gateway, scripted_upstream, page_and_problems):
    page, _ = page_and_problems
    chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
    scripted_upstream.healthy = False
    try:
        _wait_for_upstream_health(scripted_gateway.url, healthy=False)
        chat.send("Hello?")
        notice = page.locator("#notice")
        expect(notice).to_be_visible()
        expect(notice).to_contain_text(re.compile(r"model service is unavailable.*Try again in \d+ s"))
        expect(page.locator("#prompt")).to_have_value("Hello?")
        assert chat.user_messages.count() == 0
    finally:
        scripted_upstream.healthy = True
        _wait_for_upstream_health(scripted_gateway.url, healthy=True)


def test_scripted_rate_limit_shows_the_wait_time(scripted_gateway, scripted_upstream, page_and_problems):
    page, _ = page_and_problems
    scripted_upstream.script("Only one.")
    key = create_key(scripted_gateway.url, ADMIN_TOKEN, requestsPerMinute=1)
    chat = ChatPage(page, scripted_gateway.url).open().login(key)
    chat.send("first")
    chat.wait_reply_status("complete")
    chat.send("second")
    notice = page.locator("#notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Rate limit reached")
    expect(notice).to_contain_text("Try again in")
    expect(page.locator("#prompt")).to_have_value("second")  # the text is given back
    assert chat.user_messages.count() == 1


def test_scripted_narrow_phone_layout_with_chinese_text(scripted_gateway, scripted_upstream, phone_page_and_problems):
    page, _ = phone_page_and_problems
    scripted_upstream.script(["你好", "，", "世界", "！", " Hello, world!"])
    chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
    expect(page.locator("#menu-toggle")).to_be_visible()
    expect(page.locator("#new-chat")).not_to_be_in_viewport()
    chat.send("用中文打个招呼")
    reply = chat.wait_reply_status("complete")
    expect(reply.locator(".body")).to_have_text("你好，世界！ Hello, world!")
    expect(chat.user_messages.last).to_have_text("用中文打个招呼")
    # nothing sticks out sideways on a 360 px screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.click("#menu-toggle")
    expect(page.locator("#new-chat")).to_be_in_viewport()
    expect(page.locator(".conversation-link").first).to_contain_text("用中文打个招呼")
    page.screenshot(path=str(ARTIFACTS / "phone-drawer-open.png"))
    page.locator(".messages").click(position={"x": 340, "y": 300})  # a tap beside the drawer closes it
    expect(page.locator("#new-chat")).not_to_be_in_viewport()


def test_scripted_session_ended_elsewhere_returns_to_login_with_a_message(scripted_gateway, page_and_problems):
    page, _ = page_and_problems
    chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
    # The session ends behind the page's back (signed out in another tab, expired, key disabled).
    session_url = scripted_gateway.url + "/api/session"
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies(session_url))
    assert "relay_session=" in cookies
    request = urllib.request.Request(session_url, headers={"Cookie": cookies}, method="DELETE")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 204
    chat.send("Still there?")
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#login-error")).to_contain_text("Log in with a valid key")
    chat.login(scripted_gateway.api_key)
    expect(page.locator("#prompt")).to_have_value("Still there?")  # nothing typed is lost


def test_scripted_sign_out_returns_to_the_login_form(scripted_gateway, page_and_problems):
    page, _ = page_and_problems
    chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
    page.click("#logout")
    expect(page.locator("#login-view")).to_be_visible()
    page.reload()
    expect(page.locator("#login-view")).to_be_visible()
    assert chat.page.context.cookies() == [] or all(c["value"] == "" for c in chat.page.context.cookies())


def _artifact(request):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{request.node.name}.png"


def _wait_for_upstream_health(gateway_url: str, healthy: bool, timeout_s: float = 60) -> None:
    """Polls the gateway's own view of the upstream (its health probe) until it says so."""
    wanted = "1.0" if healthy else "0.0"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(gateway_url + "/actuator/prometheus", timeout=10) as response:
            metrics = response.read().decode()
        values = re.findall(r"^gateway_upstream_healthy\{[^}]*\} (\S+)$", metrics, re.MULTILINE)
        if values and all(v == wanted for v in values):
            return
        time.sleep(0.2)
    raise AssertionError(f"the gateway never saw the upstream as healthy={healthy}")


def _admin(gateway_url: str, method: str, path: str, body: dict | None = None) -> int:
    request = urllib.request.Request(
        gateway_url + path, data=None if body is None else __import__("json").dumps(body).encode(), method=method,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def test_scripted_reply_blocked_by_the_content_filter_shows_the_text_before_and_a_notice(
        scripted_gateway, scripted_upstream, page_and_problems):
    page, problems = page_and_problems
    assert _admin(scripted_gateway.url, "PUT", "/admin/content-filter/lists/page-block",
                  {"action": "block", "checkPrompt": False, "words": ["password"]}) == 200
    try:
        scripted_upstream.script(["The admin ", "pass", "WORD is hunter2"])
        chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
        chat.send("Tell me a secret")
        reply = chat.wait_reply_status("complete")
        expect(reply.locator(".body")).to_have_text("The admin")
        expect(reply.locator(".message-state")).to_have_text(
            "Stopped by the content filter: the rest of this reply was withheld")
        assert "hunter2" not in page.content()
    finally:
        _admin(scripted_gateway.url, "DELETE", "/admin/content-filter/lists/page-block")
