"""The Grafana dashboards (deploy/grafana/dashboards/*.json) query only series the two tiers really export:
a real model-service and gateway get traffic that touches every panel (answers, a stream, a rate-limit
refusal, a spent budget, a content-filter hit), then both are scraped and every
metric name in every panel's PromQL must be among the scraped ones (issue 20)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from stack import REPO, free_port, start_gateway, start_model_service

DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))
UPSTREAM_KEY = "ms-dashboards-secret"
ADMIN = {"Authorization": "Bearer admin-dashboards"}
# PromQL words that are not metric names
PROMQL = {"sum", "rate", "irate", "increase", "histogram_quantile", "by", "without", "clamp_min", "clamp_max", "avg",
          "max", "min", "count", "le", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset"}
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers outside {label matchers}, [ranges] and "strings"."""
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", expr)
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", bare)  # grouping labels
    return {n for n in NAME.findall(bare) if n not in PROMQL and not n.replace(".", "").isdigit()}


def exported(text: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_every_dashboard_panel_has_queries_and_reads_names_only():
    assert {d.name for d in DASHBOARDS} == {"gateway.json", "model-service.json"}
    for dashboard in DASHBOARDS:
        panels = json.loads(dashboard.read_text())["panels"]
        assert panels, dashboard.name
        for panel in panels:
            assert panel["targets"] and all(metric_names(t["expr"]) for t in panel["targets"]), panel["title"]


@pytest.fixture(scope="module")
def scraped(tmp_path_factory) -> set[str]:
    with start_model_service(free_port(), {"MODEL_SERVICE_API_KEY": UPSTREAM_KEY},
                             log_dir=tmp_path_factory.mktemp("logs")) as service, \
            start_gateway(free_port(), [service.url], {"GATEWAY_UPSTREAM_API_KEY": UPSTREAM_KEY,
                                                       "GATEWAY_ADMIN_TOKEN": ADMIN["Authorization"][7:]},
                          log_dir=tmp_path_factory.mktemp("logs")) as gateway:
        v1 = gateway.url + "/v1/chat/completions"
        user = {"Authorization": f"Bearer {gateway.api_key}"}
        body = {"messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 4}
        assert httpx.post(v1, headers=user, json=body, timeout=120).status_code == 200
        with httpx.stream("POST", v1, headers=user, json={**body, "stream": True}, timeout=120) as stream:
            assert stream.status_code == 200 and "[DONE]" in stream.read().decode()
        # a prompt filter hit
        assert httpx.put(gateway.url + "/admin/content-filter/lists/dash", headers=ADMIN, json={
            "action": "block", "checkPrompt": True, "words": ["forbidden"]}).status_code == 200
        assert httpx.post(v1, headers=user, json={**body, "messages": [
            {"role": "user", "content": "a forbidden word"}]}, timeout=60).status_code == 400
        # a rate-limit refusal, and a spent budget
        slow = httpx.post(gateway.url + "/admin/keys", headers=ADMIN, json={"name": "one-a-minute",
                                                                           "requestsPerMinute": 1}).json()["key"]
        codes = [httpx.post(v1, headers={"Authorization": f"Bearer {slow}"}, json=body, timeout=120).status_code
                 for _ in range(2)]
        assert codes == [200, 429]
        spent = httpx.post(gateway.url + "/admin/keys", headers=ADMIN, json={
            "name": "no-budget-left", "budget": {"tokens": 1, "period": "total"}}).json()["key"]
        refused = httpx.post(v1, headers={"Authorization": f"Bearer {spent}"}, json=body, timeout=60)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "insufficient_quota"
        yield exported(httpx.get(service.url + "/metrics").text) | exported(
            httpx.get(gateway.url + "/actuator/prometheus").text)


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_queries_read_only_exported_metrics(dashboard: Path, scraped: set[str]):
    missing = {}
    for panel in json.loads(dashboard.read_text())["panels"]:
        for target in panel["targets"]:
            absent = metric_names(target["expr"]) - scraped
            if absent:
                missing[panel["title"]] = sorted(absent)
    assert missing == {}, f"not exported after the traffic: {missing}"
