"""The chat page's rough edges from issue 18, each pinned by a test against the real gateway and
a scripted upstream: sidebar titles ellipsize, restored text stays visible after a refusal, the
streaming cursor stays inline, the header shows the server's title, the retry wait counts
down, /favicon.ico exists. Every test here says "scripted" in its name."""
from __future__ import annotations

import re
import time
import urllib.request

import pytest
from playwright.sync_api import expect

from chat_page import ADMIN_TOKEN, ChatPage, create_key
from test_chat_page_scripted import _wait_for_upstream_health


def server_title(content: str) -> str:
    """BrowserChatService.title: one line (Java's \\s is ASCII whitespace), at most 60 code points
    (59 and an ellipsis when cut), cut between words when a space in the second half allows."""
    one_line = re.sub(r"[ \t\n\x0b\f\r]+", " ", content.strip())
    if len(one_line) <= 60:
        return one_line
    head = one_line[:59]
    space = head.rfind(" ")
    if one_line[59] != " " and space >= 29:
        head = head[:space]
    return head + "…"


def test_scripted_long_titles_in_the_sidebar_end_with_an_ellipsis(
        scripted_gateway, scripted_upstream, page_and_problems):
    page, _ = page_and_problems
    scripted_upstream.script("Paris.")
    chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
    long_title = "What is the capital of France and why did it become the capital in the first place"
    chat.send(long_title)
    chat.wait_reply_status("complete")
    link = page.locator(".conversation-link").first
    expect(link).to_have_text(server_title(long_title))
    geometry = link.evaluate("""b => {
        const nav = b.closest('nav'), r = b.getBoundingClientRect(), n = nav.getBoundingClientRect();
        return { right: r.right, navRight: n.right, scrollW: b.scrollWidth, clientW: b.clientWidth,
                 navScrollW: nav.scrollWidth, navClientW: nav.clientWidth,
                 overflow: getComputedStyle(b).textOverflow };
    }""")
    # the button is as wide as the sidebar, its text cut inside it with an ellipsis
    assert geometry["right"] <= geometry["navRight"] + 0.5, geometry
    assert geometry["navScrollW"] <= geometry["navClientW"], geometry
    assert geometry["scrollW"] > geometry["clientW"], geometry
    assert geometry["overflow"] == "ellipsis", geometry


def test_scripted_refused_send_gives_the_text_back_fully_visible(
        scripted_gateway, scripted_upstream, page_and_problems):
    page, _ = page_and_problems
    scripted_upstream.script("Only one.")
    key = create_key(scripted_gateway.url, ADMIN_TOKEN, requestsPerMinute=1)
    chat = ChatPage(page, scripted_gateway.url).open().login(key)
    chat.send("first")
    chat.wait_reply_status("complete")
    text = "\n".join(f"line {i}: a sentence long enough to show whether the box fits it" for i in range(1, 5))
    chat.send(text)
    expect(page.locator("#notice")).to_contain_text("Rate limit reached")
    prompt = page.locator("#prompt")
    expect(prompt).to_have_value(text)
    sizes = prompt.evaluate("t => ({ scroll: t.scrollHeight, client: t.clientHeight })")
    assert sizes["scroll"] <= sizes["client"] + 1, f"restored text is clipped: {sizes}"


# chunks, the text that is last on screen, the element the cursor must end up in
CURSOR_CASES = {
    "list": (["Steps:\n\n", "- one\n", "- two\n", ""], "two", "li"),
    "code": (["Run:\n\n", "```sh\n", "make run\n", "```\n", ""], "make run", "code"),
    "paragraphs": (["First paragraph.\n\n", "Second paragraph.\n\n", ""], "Second paragraph.", "p"),
}


@pytest.mark.parametrize("case", sorted(CURSOR_CASES))
def test_scripted_streaming_cursor_stays_inline_so_the_bubble_does_not_jump(
        scripted_gateway, scripted_upstream, page_and_problems, case):
    page, _ = page_and_problems
    chunks, last_text, last_block = CURSOR_CASES[case]
    # the empty last chunk is a pause: all the text is shown, the reply not finished yet
    scripted_upstream.script(chunks, delay_s=0.6)
    chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
    chat.send(f"cursor {case}")
    before = page.wait_for_function("""(needle) => {
        const a = [...document.querySelectorAll('.message.assistant')].pop();
        if (!a || a.dataset.status !== 'streaming' || !a.querySelector('.body').textContent.includes(needle)) return null;
        const cursor = a.querySelector('.cursor');
        return { bubble: a.getBoundingClientRect().height, body: a.querySelector('.body').getBoundingClientRect().height,
                 cursorIn: cursor && cursor.parentElement.tagName.toLowerCase() };
    }""", arg=last_text).json_value()
    chat.wait_reply_status("complete")
    after = chat.last_reply().evaluate("""a => ({ bubble: a.getBoundingClientRect().height,
                                                 body: a.querySelector('.body').getBoundingClientRect().height })""")
    assert before["cursorIn"] == last_block, f"cursor not inside the last {last_block}: {before}"
    assert abs(before["body"] - after["body"]) < 1.5, f"the text jumped at the end: {before} -> {after}"
    assert abs(before["bubble"] - after["bubble"]) < 1.5, f"the bubble jumped at the end: {before} -> {after}"


def test_scripted_new_chat_header_shows_the_server_title_before_and_after_a_reload(
        scripted_gateway, scripted_upstream, page_and_problems):
    page, _ = page_and_problems
    scripted_upstream.script("Here is a plan.")
    chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
    # two lines, runs of spaces, and an emoji (two UTF-16 units) where the server cuts
    content = "  Plan the migration of   the billing\ndatabase to PG 16 now 😀😀😀 with zero downtime and a rollback  "
    expected = server_title(content)
    assert expected.endswith("😀…")  # the cut falls just after the emoji, as the server counts
    chat.send(content)
    header = page.locator("#conversation-title")
    expect(chat.user_messages).to_have_count(1)
    assert header.text_content() == expected  # exact: to_have_text would collapse whitespace
    chat.wait_reply_status("complete")
    expect(page.locator(".conversation-link").first).to_have_text(expected)
    assert page.locator(".conversation-link").first.text_content() == expected
    assert header.text_content() == expected
    page.reload()
    expect(chat.last_reply()).to_have_attribute("data-status", "complete")
    assert header.text_content() == expected
    # the page never cuts it; a header too narrow for it ellipsizes with CSS
    assert header.evaluate("h => getComputedStyle(h).textOverflow") == "ellipsis"


def test_scripted_retry_wait_counts_down_and_then_sending_works_again(
        scripted_gateway, scripted_upstream, page_and_problems):
    page, _ = page_and_problems
    scripted_upstream.script("Back again.")
    chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and r.url.endswith("/api/chat/messages") else None)
    scripted_upstream.healthy = False
    try:
        _wait_for_upstream_health(scripted_gateway.url, healthy=False)
        chat.send("Hello?")
        notice = page.locator("#notice")
        expect(notice).to_contain_text("Try again in 5 s")  # GATEWAY_TIMEOUTS_RETRY_AFTER's default
        expect(page.locator("#send")).to_be_disabled()
        page.press("#prompt", "Enter")  # nothing is sent while the wait runs
        expect(notice).to_contain_text("Try again in 4 s", timeout=3_000)
        expect(notice).to_contain_text("Try again in 3 s", timeout=3_000)
        assert len(posts) == 1, f"sent again during the wait: {posts}"
        scripted_upstream.healthy = True
        _wait_for_upstream_health(scripted_gateway.url, healthy=True)
        expect(notice).to_be_hidden(timeout=6_000)
        expect(page.locator("#send")).to_be_enabled()
        assert chat.user_messages.count() == 0
        page.click("#send")
        chat.wait_reply_status("complete")
        expect(chat.user_messages).to_have_count(1)
    finally:
        scripted_upstream.healthy = True
        _wait_for_upstream_health(scripted_gateway.url, healthy=True)


def test_scripted_favicon_is_served(scripted_gateway, page_and_problems):
    page, _ = page_and_problems
    with urllib.request.urlopen(scripted_gateway.url + "/favicon.ico", timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("image/")
        icon = response.read()
    assert icon[:4] == b"\x00\x00\x01\x00", "not an ICO file"
    page.goto(scripted_gateway.url + "/")
    href = page.locator('link[rel="icon"]').get_attribute("href")
    assert page.request.get(scripted_gateway.url + "/" + href.lstrip("/")).status == 200
