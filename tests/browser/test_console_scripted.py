"""The operator console (web/console/, issue 19 item 3) in Debian's Chromium against the real gateway jar
and the scripted upstream: sign-in (and a wrong token), a key created with its plaintext shown exactly once,
limits and budget edited, the usage charts showing the traffic just sent, the replicas, a degradation switch
seen in /actuator/health, and log-out; under en-US and zh-CN. Every test makes its own key, and any control
it changes it puts back. No JavaScript errors or CSP violations on any page (open_page's check)."""
from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from chat_page import ADMIN_TOKEN
from console_page import LABELS, AdminApi, ConsolePage, unique_name

LOCALES = ["en-US", "zh-CN"]


@pytest.fixture
def admin(scripted_gateway):
    api = AdminApi(scripted_gateway.url)
    yield api
    api.close()


def session_cookie(page):
    return [c for c in page.context.cookies() if c["name"] == "relay_admin" and c["value"]]


def chat(gateway_url: str, key: str, text: str, *, stream: bool = False) -> dict:
    """One /v1 chat completion with key; returns its usage (streamed: the include_usage chunk)."""
    body = {"messages": [{"role": "user", "content": text}], "stream": stream}
    headers = {"Authorization": f"Bearer {key}"}
    if not stream:
        response = httpx.post(gateway_url + "/v1/chat/completions", json=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["usage"]
    body["stream_options"] = {"include_usage": True}
    usage = None
    with httpx.stream("POST", gateway_url + "/v1/chat/completions", json=body, headers=headers, timeout=30) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("data: {") and '"usage"' in line:
                chunk = httpx.Response(200, content=line[len("data: "):]).json()
                usage = chunk.get("usage") or usage
    assert usage, "the stream carried no usage"
    return usage


@pytest.mark.parametrize("locale", LOCALES)
def test_login_with_a_wrong_then_the_right_token_and_log_out(scripted_gateway, open_page, locale):
    page, _ = open_page(locale)
    labels = LABELS[locale]
    console = ConsolePage(page, scripted_gateway.url).open("/console")  # the gateway sends /console to /console/
    assert page.url.endswith("/console/")
    expect(page.locator("html")).to_have_attribute("lang", labels["lang"])
    expect(page).to_have_title(labels["title"])
    expect(page.locator("#login-button")).to_have_text(labels["login"])
    expect(page.locator("#app-view")).to_be_hidden()

    page.fill("#admin-token", "not-the-admin-token")
    page.click("#login-button")
    expect(page.locator("#login-error")).to_have_text(labels["wrong"])
    expect(page.locator("#app-view")).to_be_hidden()
    assert not session_cookie(page)

    console.login(ADMIN_TOKEN)
    expect(page.locator("a[data-tab=keys]")).to_have_text(labels["keys"])
    expect(page.locator("a[data-tab=usage]")).to_have_text(labels["usage"])
    expect(page.locator("a[data-tab=upstreams]")).to_have_text(labels["upstreams"])
    expect(page.locator("a[data-tab=controls]")).to_have_text(labels["controls"])
    expect(page.locator("#key-new")).to_have_text(labels["new"])
    expect(page.locator("#admin-token")).to_have_value("")  # the token is not kept in the page
    [cookie] = session_cookie(page)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert "relay_admin" not in page.evaluate("document.cookie")
    # the bootstrap key of the fixture is listed, by its prefix only
    expect(page.locator("#keys-body tr[data-key-name=bootstrap]")).to_have_count(1)
    assert scripted_gateway.api_key not in page.content()

    page.reload()  # the cookie carries the session over a reload
    expect(page.locator("#app-view")).to_be_visible()

    page.click("#logout")
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#keys-body tr")).to_have_count(0)  # nothing of the session stays in the page
    assert not session_cookie(page)
    page.reload()
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#app-view")).to_be_hidden()


def test_language_switch_redoes_the_console_at_once(scripted_gateway, open_page):
    page, _ = open_page("en-US")
    console = ConsolePage(page, scripted_gateway.url).open()
    page.fill("#admin-token", "wrong")
    page.click("#login-button")
    expect(page.locator("#login-error")).to_have_text(LABELS["en-US"]["wrong"])
    page.click("#login-language")
    expect(page.locator("#login-error")).to_have_text(LABELS["zh-CN"]["wrong"])
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    console.login()
    expect(page.locator("#logout")).to_have_text(LABELS["zh-CN"]["logout"])
    expect(page.locator("#app-language")).to_have_text(LABELS["zh-CN"]["switch"])
    page.reload()  # remembered
    expect(page.locator("a[data-tab=keys]")).to_have_text(LABELS["zh-CN"]["keys"])
    page.click("#app-language")
    expect(page.locator("a[data-tab=keys]")).to_have_text(LABELS["en-US"]["keys"])


@pytest.mark.parametrize("locale", LOCALES)
def test_a_created_key_shows_its_plaintext_exactly_once(scripted_gateway, open_page, admin, locale):
    page, _ = open_page(locale)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=scripted_gateway.url)
    console = ConsolePage(page, scripted_gateway.url).open().login()
    name = unique_name("console-create")
    plaintext = console.create_key(name, rpm=30, tpm=20000, streams=3, budget_period="day", budget_tokens=50000)
    expect(page.locator("#new-key")).to_contain_text(LABELS[locale]["once"])
    assert plaintext and plaintext.startswith("sk-")

    page.click("#new-key-copy")
    expect(page.locator("#new-key-copy-state")).to_have_text(LABELS[locale]["copied"])
    assert page.evaluate("navigator.clipboard.readText()") == plaintext

    stored = admin.key_named(name)
    assert (stored["requestsPerMinute"], stored["tokensPerMinute"], stored["maxConcurrentStreams"]) == (30, 20000, 3)
    assert stored["enabled"] is True
    assert stored["budget"]["tokens"] == 50000 and stored["budget"]["period"] == "day"
    assert "key" not in stored and plaintext.startswith(stored["prefix"])
    row = console.key_row(name)
    expect(row.locator("td[data-field=prefix]")).to_have_text(stored["prefix"] + "…")
    expect(row.locator(".budget")).to_have_attribute("data-tokens", "50000")
    expect(row.locator("progress.budget-bar")).to_have_attribute("max", "50000")

    # the plaintext is a working key
    assert httpx.get(scripted_gateway.url + "/v1/models", headers={"Authorization": f"Bearer {plaintext}"},
                     timeout=30).status_code == 200

    # ... and the console never shows it again: not after a reload
    page.reload()
    expect(page.locator("#app-view")).to_be_visible()
    expect(console.key_row(name)).to_have_count(1)
    expect(page.locator("#new-key")).to_be_hidden()
    assert plaintext not in page.content()
    assert plaintext not in page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")

    # nor after "I have saved it", for a second key
    second = console.create_key(unique_name("console-create"))
    assert second != plaintext
    page.click("#new-key-done")
    expect(page.locator("#new-key")).to_be_hidden()
    assert second not in page.content()


def test_editing_limits_and_budget_reaches_the_gateway(scripted_gateway, open_page, admin):
    page, _ = open_page("en-US")
    name = unique_name("console-edit")
    key = admin.create_key(name)
    console = ConsolePage(page, scripted_gateway.url).open().login()
    row = console.key_row(name)
    expect(row.locator(".budget")).to_have_count(0)

    row.locator("[data-action=edit]").click()
    expect(page.locator("#key-name")).to_have_value(name)
    console.fill_key_form(rpm=45, tpm=9000, streams=2, budget_period="month", budget_tokens=20000)
    page.click("#key-form-submit")
    expect(page.locator("#key-form")).to_be_hidden()
    expect(row.locator("td[data-field=limits]")).to_have_attribute("data-requests-per-minute", "45")
    stored = admin.key(key["id"])
    assert (stored["requestsPerMinute"], stored["tokensPerMinute"], stored["maxConcurrentStreams"]) == (45, 9000, 2)
    assert stored["budget"]["tokens"] == 20000 and stored["budget"]["period"] == "month"
    assert stored["budget"]["resetsAt"]
    expect(row.locator(".budget")).to_have_attribute("data-period", "month")
    expect(row.locator(".budget")).to_have_attribute("data-remaining", str(stored["budget"]["remaining"]))

    # a bad limit is refused in the page, nothing sent
    row.locator("[data-action=edit]").click()
    console.fill_key_form(rpm=0)
    page.click("#key-form-submit")
    expect(page.locator("#key-form-error")).not_to_be_empty()
    page.click("#key-form-cancel")
    assert admin.key(key["id"])["requestsPerMinute"] == 45

    # budget removed
    row.locator("[data-action=edit]").click()
    console.fill_key_form(budget_period="")
    page.click("#key-form-submit")
    expect(page.locator("#key-form")).to_be_hidden()
    expect(row.locator(".budget")).to_have_count(0)
    assert "budget" not in admin.key(key["id"])

    # disabled: the key stops working; enabled again: it works
    auth = {"Authorization": f"Bearer {key['key']}"}
    row.locator("[data-action=disable]").click()
    expect(row).to_have_attribute("data-enabled", "false")
    assert admin.key(key["id"])["enabled"] is False
    assert httpx.get(scripted_gateway.url + "/v1/models", headers=auth, timeout=30).status_code == 401
    row.locator("[data-action=enable]").click()
    expect(row).to_have_attribute("data-enabled", "true")
    assert httpx.get(scripted_gateway.url + "/v1/models", headers=auth, timeout=30).status_code == 200

    # delete asks first (inline, no dialog); cancel keeps the key
    row.locator("[data-action=delete]").click()
    row.locator("[data-action=cancel-delete]").click()
    expect(row.locator("[data-action=edit]")).to_be_visible()
    row.locator("[data-action=delete]").click()
    row.locator("[data-action=confirm-delete]").click()
    expect(row).to_have_count(0)
    assert admin.client.get(f"/admin/keys/{key['id']}").status_code == 404


@pytest.mark.parametrize("locale", LOCALES)
def test_usage_charts_show_the_traffic_just_sent(scripted_gateway, scripted_upstream, open_page, admin, locale):
    name = unique_name("console-usage")
    key = admin.create_key(name)["key"]
    scripted_upstream.script("Paris is the capital of France.")
    usages = [chat(scripted_gateway.url, key, f"Question {i}: what is the capital of France?") for i in range(3)]
    usages.append(chat(scripted_gateway.url, key, "And of Italy?", stream=True))
    tokens = sum(u["total_tokens"] for u in usages)
    scripted_upstream.script("unused", status=500)  # one request the upstream fails: an error in the charts
    try:
        failed = httpx.post(scripted_gateway.url + "/v1/chat/completions", timeout=30,
                            json={"messages": [{"role": "user", "content": "fail"}]},
                            headers={"Authorization": f"Bearer {key}"})
        assert failed.status_code >= 500, failed.text
    finally:
        scripted_upstream.script("Paris is the capital of France.")

    page, _ = open_page(locale)
    console = ConsolePage(page, scripted_gateway.url).open().login()
    console.tab("usage")
    expect(page.locator("#usage-view")).to_have_attribute("data-range", "24h")
    series = console.wait_usage(lambda s: sum(s["requests"].get(name, [])) >= 5)
    assert sum(series["requests"][name]) == 5, series["requests"]
    assert len(series["requests"][name]) == 24  # one point an hour
    assert sum(series["tokens"][name]) == tokens
    assert sum(series["errors"][name]) == 1, series["errors"]
    assert any(v is not None for v in series["ttft"][f"{name} p50"])
    assert any(v is not None for v in series["ttft"][f"{name} p95"])
    # the table behind the charts says the same
    rows = page.locator(f"#usage-body tr[data-label='{name}']")
    expect(rows).not_to_have_count(0)
    assert sum(int(r.get_attribute("data-requests")) for r in rows.all()) == 5
    assert sum(int(r.get_attribute("data-errors")) for r in rows.all()) == 1
    expect(page.locator("#chart-requests canvas")).to_have_count(1)  # uPlot drew it

    # by model: the scripted upstream's model carries (at least) this traffic
    page.select_option("#usage-by", "model")
    expect(page.locator("#usage-view")).to_have_attribute("data-by", "model")
    by_model = console.chart_series("requests")
    assert sum(sum(v) for v in by_model.values()) >= 5, by_model

    # 7 and 30 days: daily points, the same traffic
    page.select_option("#usage-by", "key")
    for range_, points in (("7d", 7), ("30d", 30)):
        page.select_option("#usage-range", range_)
        expect(page.locator("#usage-view")).to_have_attribute("data-range", range_)
        expect(page.locator("#usage-view")).to_have_attribute("data-state", "ready")
        daily = console.chart_series("requests")[name]
        assert len(daily) == points and sum(daily) == 5, daily


def test_upstream_replicas_are_shown(scripted_gateway, scripted_upstream, open_page):
    page, _ = open_page("zh-CN")
    console = ConsolePage(page, scripted_gateway.url).open().login()
    console.tab("upstreams")
    row = page.locator(f"#upstreams-body tr[data-name='{scripted_upstream.url}']")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-healthy", "true")
    expect(row).to_have_attribute("data-breaker", "CLOSED")
    expect(row).to_contain_text(LABELS["zh-CN"]["healthy"])
    expect(row.locator("td[data-field=inFlight]")).to_have_text("0")


def test_degradation_switch_shows_in_actuator_health(scripted_gateway, open_page, admin):
    def health():
        return httpx.get(scripted_gateway.url + "/actuator/health", timeout=30).json()["components"]["degradation"]["details"]

    prompt = "You are <b>Zephyr</b> & friends."
    assert admin.put("/admin/system-prompts/models/*", {"prompt": prompt}).status_code == 200
    assert admin.put("/admin/content-filter/lists/console-test",
                     {"action": "mask", "words": ["darn", "heck"]}).status_code == 200
    try:
        page, _ = open_page("en-US")
        console = ConsolePage(page, scripted_gateway.url).open().login()
        console.tab("controls")
        view = page.locator("#controls-view")
        # the current values
        expect(page.locator("#refuse-new")).not_to_be_checked()
        assert health()["refuseNewConversations"] is False
        expect(page.locator("#pools-body tr[data-pool=default]")).to_have_count(1)
        prompt_row = page.locator("#prompts-body tr[data-target='*']")
        expect(prompt_row.locator(".prompt-text")).to_have_text(prompt)  # as text, never markup
        expect(prompt_row.locator("b")).to_have_count(0)
        expect(page.locator("#filters-body tr[data-list=console-test]")).to_contain_text("2")

        page.click("#refuse-new")
        expect(view).to_have_attribute("data-refuse-new-conversations", "true")
        expect(page.locator("#refuse-new")).to_be_checked()
        assert health()["refuseNewConversations"] is True

        page.fill("#cap-value", "256")
        page.click("#cap-apply")
        expect(view).to_have_attribute("data-max-tokens-cap", "256")
        assert health()["maxTokensCap"] == 256
        page.click("#cap-lift")
        expect(view).to_have_attribute("data-max-tokens-cap", "")
        assert health()["maxTokensCap"] == "none"

        page.click("#refuse-new")
        expect(view).to_have_attribute("data-refuse-new-conversations", "false")
        assert health()["refuseNewConversations"] is False
    finally:
        admin.patch("/admin/degradation", {"refuseNewConversations": None, "maxTokensCap": None})
        admin.delete("/admin/system-prompts/models/*")
        admin.delete("/admin/content-filter/lists/console-test")
