"""The chat page in Chinese and English (zh-CN and en-US browsers), its language switch, Enter
during IME composition, and the model picker against a gateway with two scripted upstreams,
one pool per model. Every test here says "scripted" in its name."""
from __future__ import annotations

import json
import urllib.request

import pytest
from playwright.sync_api import expect

from chat_page import ADMIN_TOKEN, ARTIFACTS, ChatPage, create_key
from scripted_upstream import ScriptedUpstream
from stack import free_port, start_gateway

SMOL = "smollm2-135m-instruct"
QWEN = "qwen2.5-coder-0.5b-instruct"

# what a person reads, per locale: (selector, text) before and after logging in
LABELS = {
    "zh-CN": {
        "lang": "zh-CN", "switch": "English",
        "login": [("#login-button", "登录"), ("label[for=api-key]", "API 密钥")],
        "app": [("#new-chat", "+ 新对话"), ("#logout", "退出登录"), ("#send", "发送"),
                ("#conversation-title", "新对话"), (".empty-hint", "有什么问题都可以问。Enter 发送，Shift+Enter 换行。")],
        "placeholder": "输入消息（Enter 发送，Shift+Enter 换行）", "copy": "复制", "title_suffix": "新对话 · llm-relay",
    },
    "en-US": {
        "lang": "en", "switch": "中文",
        "login": [("#login-button", "Log in"), ("label[for=api-key]", "API key")],
        "app": [("#new-chat", "+ New chat"), ("#logout", "Log out"), ("#send", "Send"),
                ("#conversation-title", "New chat"), (".empty-hint", "Ask anything. Enter sends, Shift+Enter adds a new line.")],
        "placeholder": "Message (Enter to send, Shift+Enter for a new line)", "copy": "Copy",
        "title_suffix": "New chat · llm-relay",
    },
}


def expect_labels(page, locale: str, part: str) -> None:
    labels = LABELS[locale]
    expect(page.locator("html")).to_have_attribute("lang", labels["lang"])
    for selector, text in labels[part]:
        expect(page.locator(selector)).to_have_text(text)
    expect(page.locator(".language-switch:visible")).to_have_text(labels["switch"])
    if part == "app":
        expect(page.locator("#prompt")).to_have_attribute("placeholder", labels["placeholder"])
        expect(page).to_have_title(labels["title_suffix"])


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_scripted_labels_follow_the_browser_language(scripted_gateway, scripted_upstream, open_page, locale):
    page, _ = open_page(locale)
    scripted_upstream.script("你好！Hello!")
    chat = ChatPage(page, scripted_gateway.url).open()
    expect(page.locator("#login-view")).to_be_visible()
    expect_labels(page, locale, "login")
    page.screenshot(path=str(ARTIFACTS / f"login-{locale}.png"))
    chat.login(scripted_gateway.api_key)
    expect_labels(page, locale, "app")
    chat.send("你好")
    reply = chat.wait_reply_status("complete")
    expect(reply.locator(".copy-reply")).to_have_text(LABELS[locale]["copy"])


def test_scripted_language_switch_changes_the_page_at_once_and_is_remembered(
        scripted_gateway, scripted_upstream, open_page):
    page, _ = open_page("en-US")
    scripted_upstream.script("Stopped here.", finish_reason="length")
    chat = ChatPage(page, scripted_gateway.url).open()
    expect_labels(page, "en-US", "login")
    page.click("#login-language")  # 中文 on the login card
    expect_labels(page, "zh-CN", "login")
    page.fill("#api-key", "sk-relay-not-a-real-key")
    page.click("#login-button")  # the error is in Chinese, and follows the next switch
    expect(page.locator("#login-error")).to_have_text("该 API 密钥无效（或已停用）。")
    page.click("#login-language")
    expect(page.locator("#login-error")).to_have_text("That API key is not valid (or it is disabled).")
    expect_labels(page, "en-US", "login")
    page.click("#login-language")
    chat.login(scripted_gateway.api_key)
    expect_labels(page, "zh-CN", "app")
    chat.send("Say something")
    reply = chat.wait_reply_status("complete")
    expect(reply.locator(".message-state")).to_have_text("已达到长度上限，回复被截断")
    expect(page.locator("#conversation-title")).to_have_text("Say something")

    page.click("#app-language")  # English, in the sidebar
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#new-chat")).to_have_text("+ New chat")
    expect(reply.locator(".message-state")).to_have_text("Cut off at the length limit")
    expect(reply.locator(".copy-reply")).to_have_text("Copy")
    expect(page.locator("#conversation-title")).to_have_text("Say something")  # a title is not translated

    page.click("#app-language")
    expect(page.locator("#send")).to_have_text("发送")
    page.reload()  # remembered
    expect(page.locator("#send")).to_have_text("发送")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(chat.last_reply().locator(".message-state")).to_have_text("已达到长度上限，回复被截断")
    page.screenshot(path=str(ARTIFACTS / "chat-zh-CN.png"), full_page=True)


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_scripted_enter_during_ime_composition_sends_nothing(scripted_gateway, scripted_upstream, open_page, locale):
    page, _ = open_page(locale)
    scripted_upstream.script("收到。")
    chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
    posts = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" and "/api/chat/messages" in r.url else None)
    upstream_before = len(scripted_upstream.requests)
    page.click("#prompt")
    page.keyboard.insert_text("你好")
    # the Enter that confirms a pinyin composition: isComposing set (Chrome, Firefox), or the
    # legacy keyCode 229 that Safari and older Chrome send instead
    seen = page.eval_on_selector("#prompt", """el => {
        const events = [
          new KeyboardEvent("keydown", { key: "Enter", code: "Enter", isComposing: true, bubbles: true, cancelable: true }),
          new KeyboardEvent("keydown", { key: "Enter", code: "Enter", keyCode: 229, bubbles: true, cancelable: true }),
        ];
        el.dispatchEvent(new CompositionEvent("compositionstart", { data: "" }));
        const defaults = events.map((e) => { el.dispatchEvent(e); return e.defaultPrevented; });
        el.dispatchEvent(new CompositionEvent("compositionend", { data: "你好" }));
        return { keyCode: events[1].keyCode, defaults };
    }""")
    assert seen["keyCode"] == 229
    assert seen["defaults"] == [False, False], "the page took the composing Enter as its own"
    page.wait_for_timeout(500)  # a send would have left by now
    assert posts == [], "Enter during composition sent the message"
    assert chat.user_messages.count() == 0
    expect(page.locator("#prompt")).to_have_value("你好")
    assert len(scripted_upstream.requests) == upstream_before
    page.keyboard.press("Enter")  # composition over: Enter sends
    chat.wait_reply_status("complete")
    expect(chat.user_messages).to_have_text(["你好"])
    assert len(posts) == 1


# ---- the model picker: two scripted upstreams, one pool per model ----------------------------

@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    with ScriptedUpstream(model_id=SMOL) as smol, ScriptedUpstream(model_id=QWEN) as qwen:
        smol.script("I am the small one.")
        qwen.script("我是千问。")
        env = {"GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN, "GATEWAY_HEALTH_INTERVAL": "300ms"}
        with start_gateway(free_port(), [f"{SMOL}={smol.url}", f"{QWEN}={qwen.url}"], env,
                           log_dir=tmp_path_factory.mktemp("logs")) as gateway:
            yield gateway, {SMOL: smol, QWEN: qwen}


def _conversation(page, gateway_url: str, conversation_id: str) -> dict:
    url = f"{gateway_url}/api/chat/conversations/{conversation_id}"
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies(url))
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Cookie": cookies}), timeout=30) as response:
        return json.load(response)


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_scripted_model_picker_sends_the_chosen_model_and_remembers_it_per_conversation(
        two_models, open_page, locale):
    gateway, upstreams = two_models
    page, _ = open_page(locale)
    bodies = []
    page.on("request", lambda r: bodies.append(r.post_data_json)
            if r.method == "POST" and r.url.endswith("/api/chat/messages") else None)
    chat = ChatPage(page, gateway.url).open().login(gateway.api_key)
    picker = page.locator("#model")
    expect(picker).to_be_visible()
    expect(picker.locator("option")).to_have_text([SMOL, QWEN])  # the gateway's order
    expect(picker).to_have_value(SMOL)  # the default
    expect(page.locator("#model-picker .visually-hidden")).to_have_text("模型" if locale == "zh-CN" else "Model")

    # a new chat on the second model
    picker.select_option(QWEN)
    asked = len(upstreams[QWEN].requests)
    chat.send("你是谁？")
    expect(chat.wait_reply_status("complete").locator(".body")).to_have_text("我是千问。")
    assert bodies[-1]["model"] == QWEN
    assert len(upstreams[QWEN].requests) == asked + 1
    first = page.evaluate("location.hash.split('/').pop()")
    assert _conversation(page, gateway.url, first)["model"] == QWEN
    page.screenshot(path=str(ARTIFACTS / f"model-picker-{locale}.png"))

    # the next new chat starts at the last pick; this one goes to the first model
    page.click("#new-chat")
    expect(picker).to_have_value(QWEN)
    picker.select_option(SMOL)
    chat.send("Who are you?")
    expect(chat.wait_reply_status("complete").locator(".body")).to_have_text("I am the small one.")
    assert bodies[-1]["model"] == SMOL
    second = page.evaluate("location.hash.split('/').pop()")
    assert _conversation(page, gateway.url, second)["model"] == SMOL

    # each conversation shows its own model, also after a reload
    page.locator(f'.conversation-link[data-conversation-id="{first}"]').click()
    expect(chat.last_reply().locator(".body")).to_have_text("我是千问。")
    expect(picker).to_have_value(QWEN)
    page.reload()
    expect(chat.last_reply()).to_have_attribute("data-status", "complete")
    expect(picker).to_have_value(QWEN)
    page.locator(f'.conversation-link[data-conversation-id="{second}"]').click()
    expect(picker).to_have_value(SMOL)

    # another model for an existing conversation switches it
    picker.select_option(QWEN)
    chat.send("再说一次")
    expect(chat.wait_reply_status("complete").locator(".body")).to_have_text("我是千问。")
    assert bodies[-1] == {"conversationId": second, "content": "再说一次", "model": QWEN}
    assert _conversation(page, gateway.url, second)["model"] == QWEN
    page.click("#new-chat")
    expect(picker).to_have_value(QWEN)


def test_scripted_model_not_offered_gives_the_text_back_and_stores_nothing(two_models, open_page):
    gateway, _ = two_models
    page, _ = open_page("zh-CN")
    # a picker older than the gateway's list: it still offers a model that has gone
    page.route("**/api/chat/models", lambda route: route.fulfill(
        status=200, content_type="application/json",
        body=json.dumps({"models": [{"id": SMOL}, {"id": QWEN}, {"id": "gone-model"}], "default": SMOL})))
    key = create_key(gateway.url, ADMIN_TOKEN)  # its own key: no conversations yet
    chat = ChatPage(page, gateway.url).open().login(key)
    page.locator("#model").select_option("gone-model")
    chat.send("还在吗？")
    expect(page.locator("#notice")).to_have_text("该模型已不再提供，请另选一个。")
    expect(page.locator("#prompt")).to_have_value("还在吗？")
    assert chat.user_messages.count() == 0
    expect(page.locator("#conversation-title")).to_have_text("新对话")
    stored = page.evaluate("fetch('/api/chat/conversations').then(r => r.json())")
    assert stored["conversations"] == [], stored  # nothing was stored


def test_scripted_picker_hidden_with_one_model_or_an_older_gateway(scripted_gateway, scripted_upstream, open_page):
    scripted_upstream.script("One model only.")
    # one model offered: nothing to pick
    page, _ = open_page("en-US")
    chat = ChatPage(page, scripted_gateway.url).open().login(scripted_gateway.api_key)
    answer = page.evaluate("fetch('/api/chat/models').then(r => r.json())")
    assert [m["id"] for m in answer["models"]] == ["scripted"], answer
    expect(page.locator("#model-picker")).to_be_hidden()
    # a gateway without the route (404): hidden, and messages name no model
    older, _ = open_page("en-US")
    older.route("**/api/chat/models", lambda route: route.fulfill(
        status=404, content_type="application/problem+json", body='{"status":404,"title":"Not Found"}'))
    bodies = []
    older.on("request", lambda r: bodies.append(r.post_data_json)
             if r.method == "POST" and r.url.endswith("/api/chat/messages") else None)
    chat = ChatPage(older, scripted_gateway.url).open().login(scripted_gateway.api_key)
    expect(older.locator("#model-picker")).to_be_hidden()
    chat.send("Hello")
    chat.wait_reply_status("complete")
    assert len(bodies) == 1 and "model" not in bodies[0], bodies
