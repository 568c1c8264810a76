"""The managers' own metrics in the tenants' series: the service's sampler records each
tenant's cache hit ratio of the interval and the platform's breaker states."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from tenantry.api import create_app
from tenantry.api.sampling import ServiceSampler
from tenantry.audit.outbox import AuditOutbox
from tenantry.audit.trail import KeyringAuditCipher, audit_entry
from tenantry.config import Settings
from tenantry.context import tenant_scope


async def test_the_sampler_records_cache_hit_ratios_and_breakers(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = app.state.tenantry
        tenant = f"smp-{uuid.uuid4().hex[:12]}"
        await state.tenants.create(tenant, "Sampled")
        sampler = ServiceSampler(state.monitoring, state.cache, state.connections)
        sampler.sample()  # the counters so far are the baseline
        with tenant_scope(tenant):
            await state.cache.set("release", {"title": "Blue Hour"})
            for key in ("release", "release", "release", "missing"):
                await state.cache.get(key)
        assert sampler.sample() >= 3
        await state.monitoring.flush(everything=True)
        now = datetime.now(UTC)
        window = {"start": now - timedelta(minutes=5), "end": now + timedelta(minutes=5)}
        ratio = await state.monitoring.query(tenant, "cache_hit_ratio", step=600, **window)
        assert [p.value for p in ratio.points] == [0.75]
        lookups = await state.monitoring.query(
            tenant, "cache_lookups", step=600, aggregation="sum", **window
        )
        assert [p.value for p in lookups.points] == [4.0]
        breakers = await state.monitoring.query(
            "platform",
            "breaker_open",
            step=600,
            aggregation="max",
            labels={"backend": "postgres"},
            **window,
        )
        assert [p.value for p in breakers.points] == [0.0]


async def test_sessions_created_are_sampled_per_tenant(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = app.state.tenantry
        tenant = f"smp-{uuid.uuid4().hex[:12]}"
        await state.tenants.create(tenant, "Sessions")
        sampler = ServiceSampler(
            state.monitoring, state.cache, state.connections, sessions=state.sessions
        )
        for user in ("ana", "ben", "ana"):
            await state.sessions.create_session(tenant, user)
        sampler.sample()  # (the app's own sampler may have taken some: both record them)
        await state.monitoring.flush(everything=True)
        now = datetime.now(UTC)
        created = await state.monitoring.query(
            tenant,
            "sessions_created",
            start=now - timedelta(minutes=5),
            end=now + timedelta(minutes=5),
            step=600,
            aggregation="sum",
        )
        assert [p.value for p in created.points] == [3.0]
        assert state.sessions.take_created() == {}  # taken by a sample


async def test_the_audit_backlog_is_sampled_until_it_is_integrated(settings: Settings) -> None:
    """Entries committed to a tenant's audit queue and not yet in its tree: held back here by
    an integration waiting for its keys, then let through."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = app.state.tenantry
        tenant = f"smp-{uuid.uuid4().hex[:12]}"
        await state.tenants.create(tenant, "Backlog")
        trail = state.security.trail
        release = asyncio.Event()

        async def keys_later(tenant_id: str) -> None:
            await release.wait()
            await trail.prepare(tenant_id)

        outbox = AuditOutbox(trail.audit_log, KeyringAuditCipher(trail.keyring), prepare=keys_later)
        sampler = ServiceSampler(state.monitoring, state.cache, state.connections, audit=outbox)
        assert await sampler.sample_audit() == 0  # nothing queued: nothing to follow
        for n in range(3):
            await outbox.enqueue(tenant, audit_entry(tenant, "release.publish", f"r{n}", actor="t"))
        await asyncio.sleep(0.05)  # the integration has started, and waits
        assert await sampler.sample_audit() == 1
        release.set()
        assert await outbox.integrate(tenant) + await outbox.backlog(tenant) <= 3
        await outbox.close()
        assert await outbox.backlog(tenant) == 0
        assert await sampler.sample_audit() == 1  # followed down to 0
        assert await sampler.sample_audit() == 0  # then no more
        await state.monitoring.flush(everything=True)
        now = datetime.now(UTC)
        window = {"start": now - timedelta(minutes=5), "end": now + timedelta(minutes=5)}
        high = await state.monitoring.query(
            tenant, "audit_backlog", step=600, aggregation="max", **window
        )
        low = await state.monitoring.query(
            tenant, "audit_backlog", step=600, aggregation="min", **window
        )
        assert ([p.value for p in high.points], [p.value for p in low.points]) == ([3.0], [0.0])
        assert len(await trail.audit_log.entries(tenant)) >= 3  # they reached the tree
