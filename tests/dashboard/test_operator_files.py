"""The Grafana dashboard and the Prometheus rules shipped for operators who run their own
(``deploy/``): they parse, and every metric they read is in the service's ``/metrics``, with the
labels they match on; every ``tenantry:*`` series they read is recorded by the rules."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tenantry.config import Settings
from tests.conftest import ROOT, TOKEN
from tests.support.service import running_app

from .world import make_tenant

GRAFANA = ROOT / "deploy" / "grafana" / "tenantry.json"
RULES = ROOT / "deploy" / "prometheus" / "tenantry-rules.yml"
#: A metric a rule or panel reads, and the label matchers and groupings that follow it.
NAME = re.compile(r"\b(tenantry_[a-z0-9_]+)(\{[^}]*\})?")
RECORDED = re.compile(r"\btenantry:[a-z0-9_:]+")
MATCHER = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
DURATION = re.compile(r"^\d+[smhd]$")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def _rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(RULES.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def _panel_exprs() -> list[str]:
    board = json.loads(GRAFANA.read_text())
    return [t["expr"] for panel in board["panels"] for t in panel["targets"]]


def _balanced(expr: str) -> bool:
    depth = 0
    for char in expr:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def test_the_files_parse() -> None:
    board = json.loads(GRAFANA.read_text())
    assert board["uid"] == "tenantry"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)) >= 6
    for panel in board["panels"]:
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys()
    loaded = yaml.safe_load(RULES.read_text())
    names = [g["name"] for g in loaded["groups"]]
    assert len(names) == len(set(names))
    rules = _rules()
    assert any("record" in r for r in rules)
    assert any("alert" in r for r in rules)
    for rule in rules:
        assert ("record" in rule) != ("alert" in rule), rule
        assert _balanced(rule["expr"]), rule
        assert "for" not in rule or DURATION.match(rule["for"]), rule
        if "alert" in rule:
            assert rule["annotations"]["summary"]
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    for expr in _panel_exprs():
        assert _balanced(expr), expr
        assert NAME.search(expr) or RECORDED.search(expr), expr


async def test_every_metric_they_read_is_exposed(settings: Settings) -> None:
    # one named series a tenant: the next ones are counted as overflow, so that it is exposed too
    async with running_app(settings, metrics_max_series_per_tenant=1) as (state, client):
        tenant = await make_tenant(client, "scrape")
        bearer = {"Authorization": f"Bearer {tenant.admin_token}"}
        for _ in range(3):
            assert (await client.get("/settings", headers=bearer)).status_code == 200
            state.monitoring.record("dashboard_probe", 1.0, None, tenant.id)  # a second series
        await state.monitoring.flush(everything=True)  # the tenants' series in the exposition
        text = (await client.get("/metrics", headers=TOKEN)).text
    exposed: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        labels = {key for sample in family.samples for key in sample.labels}
        for suffix in SUFFIXES.get(family.type, ("",)):
            exposed.setdefault(family.name + suffix, set()).update(labels)
    exprs = [rule["expr"] for rule in _rules()] + _panel_exprs()
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    used: set[str] = set()
    for expr in exprs:
        for name in RECORDED.findall(expr):
            assert name in recorded, f"{name} is read but no rule records it: {expr}"
        for name, matchers in NAME.findall(expr):
            used.add(name)
            assert name in exposed, f"{name} is not in /metrics: {expr}"
            for label in MATCHER.findall(matchers):
                assert label in exposed[name], f"{name} has no label {label!r}: {expr}"
        for grouping in GROUPING.findall(expr):
            labels = {g.strip() for g in grouping.split(",") if g.strip()} - {"le"}
            names = [n for n, _ in NAME.findall(expr)]
            if names:
                known = set().union(*(exposed[n] for n in names))
                assert labels <= known, f"grouping by {labels - known} in {expr}"
    assert {"tenantry_http_requests_total", "tenantry_tenant_metric_count_total"} <= used
