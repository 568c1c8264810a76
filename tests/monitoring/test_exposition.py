"""The tenants' series in the Prometheus exposition: added at each flush, bounded per tenant
and in tenants (overflow counted, not named), read through the protected ``/metrics``."""

from __future__ import annotations

import re
import uuid

import httpx
from prometheus_client import CollectorRegistry, generate_latest

from tenantry.api import create_app
from tenantry.config import Settings
from tenantry.db.engine import Database
from tenantry.monitoring.aggregate import Aggregator
from tenantry.monitoring.exposition import TenantExposition
from tenantry.monitoring.manager import MonitoringManager
from tests.conftest import TOKEN, NewTenant


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, ...], float]:
    """``name``'s samples: label values (in the order given) -> value."""
    found: dict[tuple[str, ...], float] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sample.labels.values())] = sample.value
    return found


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def drained(records: list[tuple[str, str, float, dict[str, str]]]) -> Aggregator:
    clock = Clock()
    aggregator = Aggregator(clock=clock)
    for tenant, name, value, tags in records:
        aggregator.record(tenant, name, value, frozenset(tags.items()))
    clock.now += 10
    return aggregator


def test_counts_and_sums_are_added_per_tenant_and_name_tags_folded() -> None:
    registry = CollectorRegistry()
    exposition = TenantExposition(registry)
    aggregator = drained(
        [
            ("lark", "stream_seconds", 1.5, {"region": "eu"}),
            ("lark", "stream_seconds", 2.5, {"region": "us"}),
            ("lark", "balance_change", -4.0, {}),
            ("wren", "stream_seconds", 3.0, {"region": "eu"}),
        ]
    )
    exposition.add(aggregator.drain())
    exposition.add(aggregator.drain())  # nothing new: nothing added
    counts = samples(registry, "tenantry_tenant_metric_count_total")
    assert counts == {
        ("lark", "stream_seconds"): 2.0,  # the tags are not labels: one series a name
        ("lark", "balance_change"): 1.0,
        ("wren", "stream_seconds"): 1.0,
    }
    sums = samples(registry, "tenantry_tenant_metric_sum")
    assert sums[("lark", "stream_seconds")] == 4.0
    assert sums[("lark", "balance_change")] == -4.0  # a gauge: a negative value is fine
    assert samples(registry, "tenantry_tenant_series_overflow_total") == {}


def test_names_past_the_cap_are_counted_not_named() -> None:
    registry = CollectorRegistry()
    exposition = TenantExposition(registry, max_series=2)
    exposition.add(drained([("lark", "m0", 1.0, {}), ("lark", "m1", 1.0, {})]).drain())
    records = [("lark", f"m{n}", 1.0, {}) for n in range(5)]
    exposition.add(drained(records).drain())
    assert exposition.named("lark") == {"m0", "m1"}
    counts = samples(registry, "tenantry_tenant_metric_count_total")
    assert counts == {("lark", "m0"): 2.0, ("lark", "m1"): 2.0}
    assert samples(registry, "tenantry_tenant_series_overflow_total") == {("lark",): 3.0}
    # a later flush of a named metric is still added; an unnamed one still overflows
    exposition.add(drained([("lark", "m1", 1.0, {}), ("lark", "m9", 1.0, {})]).drain())
    assert samples(registry, "tenantry_tenant_metric_count_total")[("lark", "m1")] == 3.0
    assert samples(registry, "tenantry_tenant_series_overflow_total") == {("lark",): 4.0}


def test_tenants_past_the_cap_are_counted_under_other() -> None:
    registry = CollectorRegistry()
    exposition = TenantExposition(registry, max_tenants=2)
    exposition.add(drained([("t0", "plays", 1.0, {}), ("t1", "plays", 1.0, {})]).drain())
    records = [(f"t{n}", "plays", 1.0, {}) for n in range(4)] + [("t3", "plays", 1.0, {})]
    exposition.add(drained(records).drain())
    counts = samples(registry, "tenantry_tenant_metric_count_total")
    assert counts == {("t0", "plays"): 2.0, ("t1", "plays"): 2.0}
    assert samples(registry, "tenantry_tenant_series_overflow_total") == {("_other",): 3.0}
    text = generate_latest(registry).decode()
    assert len(re.findall(r"^tenantry_tenant_metric_count_total\{", text, re.MULTILINE)) == 2


async def test_the_flush_adds_what_it_wrote(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("exp")).id
    registry = CollectorRegistry()
    monitoring = MonitoringManager(db, exposition=TenantExposition(registry))
    for millis in (10, 20, 30):
        monitoring.record("render_seconds", millis / 1000, {"fixture": "a"}, tenant)
    assert samples(registry, "tenantry_tenant_metric_count_total") == {}  # not on record
    await monitoring.flush(everything=True)
    assert samples(registry, "tenantry_tenant_metric_count_total") == {
        (tenant, "render_seconds"): 3.0
    }
    assert (
        abs(samples(registry, "tenantry_tenant_metric_sum")[(tenant, "render_seconds")] - 0.06)
        < 1e-9
    )


async def test_metrics_show_the_tenants_series_to_the_service_token_only(
    settings: Settings,
) -> None:
    app = create_app(settings.model_copy(update={"metrics_max_series_per_tenant": 1}))
    async with app.router.lifespan_context(app):
        state = app.state.tenantry
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tenantry") as client:
            tenant = f"exp-{uuid.uuid4().hex[:12]}"
            made = await client.post(
                "/tenants", json={"id": tenant, "display_name": "Exposed"}, headers=TOKEN
            )
            assert made.status_code == 201, made.text
            state.monitoring.record("plays", 2.0, {"release": 'say "hi"\n'}, tenant)
            state.monitoring.record("plays", 3.0, {"release": "other"}, tenant)
            await state.monitoring.flush(everything=True)
            state.monitoring.record("skips", 1.0, None, tenant)  # past the cap of 1
            await state.monitoring.flush(everything=True)
            body = (await client.get("/metrics", headers=TOKEN)).text
            assert (
                f'tenantry_tenant_metric_count_total{{metric="plays",tenant="{tenant}"}} 2.0'
                in body
            )
            assert f'tenantry_tenant_metric_sum{{metric="plays",tenant="{tenant}"}} 5.0' in body
            assert f'tenantry_tenant_series_overflow_total{{tenant="{tenant}"}} 1.0' in body
            assert "skips" not in body
            assert "say" not in body  # a tag is never a label
            key = await client.post(
                "/api-keys",
                json={"name": "ops", "service_account": "bot", "scopes": ["settings:read"]},
                headers={**TOKEN, "X-Tenant-ID": tenant},
            )
            assert key.status_code == 201, key.text
            refused = await client.get(
                "/metrics", headers={"Authorization": f"Bearer {key.json()['key']}"}
            )
            assert refused.status_code == 401
            assert "tenantry_" not in refused.text
