"""The behaviour learner: each session learned from once, models stored per tenant and read by
every node, analytics that only read, corrupt stored models refused, tenants apart.

The learner is driven directly (``learn_behaviour``, ``run_once``) and its clock injected: no
sleeps, no timing. Two managers on one database stand for two nodes of a deployment.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import pickle
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select, update

from tenantry.ai.models import ai_model_aliases, ai_model_versions
from tenantry.api import create_app
from tenantry.config import Settings
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.lifecycle import LifecycleManager
from tenantry.principal import ClientInfo
from tenantry.sessions.repository import SessionsRepository
from tenantry.sessions.schemas import BEHAVIOUR_MODEL
from tenantry.tenants import TenantRegistry, TenantStatus
from tenantry.threats.events import SecurityEvents
from tests.conftest import NewTenant
from tests.sessions.behaviour_data import generate
from tests.sessions.learning_world import (
    counts,
    day_shift,
    node,
    normal_sessions,
    sample_ids,
    seed,
)

PHONE = ClientInfo(ip="198.51.100.7", user_agent="LowtideApp/3.2", device_id="phone-7")


async def add_activity(db: Database, tenant_id: str, session_id: str, user: str, n: int) -> None:
    """``n`` validations of a session, a minute apart, as its touches record them."""
    start = datetime.now(UTC)
    with tenant_scope(tenant_id):
        async with db.tenant_transaction() as conn:
            repo = SessionsRepository(conn)
            for i in range(n):
                await repo.record_activity(
                    session_id=session_id,
                    user_id=user,
                    occurred_at=start + timedelta(minutes=i + 1),
                    kind="validate",
                    ip=PHONE.ip,
                    user_agent=PHONE.user_agent,
                    device_id=PHONE.device_id,
                    requests=3,
                )


# -- analytics only read -----------------------------------------------------------------------


async def test_repeated_analytics_of_a_session_learn_nothing(
    db: Database, new_tenant: NewTenant
) -> None:
    """The old analytics observed every non-anomalous report: one session asked about a few
    times became a tenant's whole training set, and its model. Now asking changes nothing."""
    tenant = (await new_tenant()).id
    manager = node(db, min_history=5, refit_every=5)
    session_id, _ = await manager.create_session(tenant, "mira", client=PHONE)
    await add_activity(db, tenant, session_id, "mira", 4)
    reports = [await manager.get_session_analytics(session_id) for _ in range(12)]
    assert all(r == reports[0] for r in reports), "a repeated call changed the answer"
    assert reports[0]["method"] == "rules"
    assert reports[0]["model_version"] == 0
    assert manager.analytics.model._samples == {}  # nothing observed in memory either
    assert await counts(db, tenant) == {"samples": 0, "models": 0, "taken": 0}


# -- each session once -------------------------------------------------------------------------


async def test_a_session_is_learned_from_once(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    manager = node(db)
    seeded = await seed(db, tenant, normal_sessions(3, 12))
    first = await manager.learn_behaviour(tenant)
    assert first.taken == 12
    assert first.learned + first.anomalous + first.too_short == 12
    assert first.learned >= 8  # normal sessions: most are learned
    assert first.samples == first.learned
    learned = await sample_ids(db, tenant)
    assert set(learned) <= set(seeded.session_ids)
    # learning again, revoking, scoring: nothing is taken or learned twice
    for session_id in seeded.session_ids[:3]:
        await manager.revoke(session_id, tenant_id=tenant)
        await manager.get_session_analytics(session_id)
    again = await manager.learn_behaviour(tenant)
    assert (again.taken, again.learned, again.samples) == (0, 0, first.learned)
    assert await sample_ids(db, tenant) == learned
    assert (await counts(db, tenant))["taken"] == 12


async def test_two_learners_never_take_the_same_session(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    seeded = await seed(db, tenant, normal_sessions(5, 30))
    a, b = node(db), node(db)
    for learner in (a.learner, b.learner):
        learner.batch = 4  # many small steps, interleaved
    steps = []
    for _ in range(6):
        steps += await asyncio.gather(a.learn_behaviour(tenant), b.learn_behaviour(tenant))
    assert sum(s.taken for s in steps) == 30
    learned = await sample_ids(db, tenant)
    assert len(learned) == len(set(learned)) == sum(s.learned for s in steps)
    assert (await counts(db, tenant))["taken"] == len(seeded.session_ids)


async def test_sessions_are_ready_when_they_end_or_have_enough_activity(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    manager = node(db)
    learner = manager.learner
    learner.ready_activities = 5
    quiet, _ = await manager.create_session(tenant, "u1", client=PHONE)
    busy, _ = await manager.create_session(tenant, "u2", client=PHONE)
    ended, _ = await manager.create_session(tenant, "u3", client=PHONE)
    expiring, _ = await manager.create_session(tenant, "u4", client=PHONE)
    await add_activity(db, tenant, quiet, "u1", 2)
    await add_activity(db, tenant, busy, "u2", 4)  # 5 with its creation
    await add_activity(db, tenant, ended, "u3", 2)
    await add_activity(db, tenant, expiring, "u4", 2)
    await manager.revoke(ended, tenant_id=tenant)
    step = await manager.learn_behaviour(tenant)
    assert step.taken == 2  # busy and ended; quiet and expiring are live and short
    assert set(await sample_ids(db, tenant)) == {busy, ended}
    learner.clock = lambda: datetime.now(UTC) + timedelta(hours=1)  # USER/HIGH: 30 min idle
    later = await manager.learn_behaviour(tenant)
    assert later.taken == 2
    assert set(await sample_ids(db, tenant)) == {quiet, busy, ended, expiring}


async def test_too_short_and_anomalous_sessions_are_not_learned(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    manager = node(db)
    short, _ = await manager.create_session(tenant, "u1", client=PHONE)
    await manager.revoke(short, tenant_id=tenant)  # its creation is all it did
    stuffing = next(s for s in generate(2, 1, 6, 12, 0.5) if s.attack == "credential_stuffing")
    bad = (await seed(db, tenant, [stuffing])).session_ids[0]
    step = await manager.learn_behaviour(tenant)
    assert (step.taken, step.too_short, step.anomalous, step.learned) == (2, 1, 1, 0)
    assert await sample_ids(db, tenant) == []
    events = await SecurityEvents(db).since(tenant, datetime.now(UTC) - timedelta(hours=1))
    assert [(e.kind, e.session_id) for e in events] == [("anomaly", bad)]
    # asking about it records nothing more (the old analytics recorded an event per call)
    for _ in range(3):
        assert (await manager.get_session_analytics(bad))["anomaly"] is True
    events = await SecurityEvents(db).since(tenant, datetime.now(UTC) - timedelta(hours=1))
    assert len(events) == 1


async def test_samples_are_bounded_to_the_newest(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    manager = node(db, max_samples=10, min_history=5)
    await seed(db, tenant, normal_sessions(4, 12))
    first = await manager.learn_behaviour(tenant)
    kept = await sample_ids(db, tenant)
    assert first.samples == len(kept) == min(first.learned, 10)
    await seed(db, tenant, normal_sessions(6, 24))
    second = await manager.learn_behaviour(tenant)
    now_kept = await sample_ids(db, tenant)
    assert len(now_kept) == 10
    assert second.learned >= 10  # every kept sample is of the second batch: the newest
    assert not set(now_kept) & set(kept)


# -- one model per tenant, the same on every node -----------------------------------------------


async def test_every_node_scores_with_the_stored_model(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    a, b = node(db), node(db)
    data = normal_sessions(7, 60, users=5)
    shift = day_shift(data)  # one timeline for the three parts
    await seed(db, tenant, data[:30], shift=shift)
    probe = (await seed(db, tenant, data[30:31], live=True, shift=shift)).session_ids[0]
    before = await b.get_session_analytics(probe)
    assert (before["method"], before["model_version"]) == ("rules", 0)
    trained = await a.learn_behaviour(tenant)
    assert trained.trained
    assert trained.model_version == 1
    on_a, on_b = await a.get_session_analytics(probe), await b.get_session_analytics(probe)
    assert on_b["method"] == "model"
    assert on_b == on_a  # the same version, the same score, the same reasons
    assert b.analytics.version(tenant) == 1
    # a retraining on node A reaches node B at its next score
    await seed(db, tenant, data[31:], shift=shift)
    retrained = await a.learn_behaviour(tenant)
    assert (retrained.trained, retrained.model_version) == (True, 2)
    assert await b.get_session_analytics(probe) == await a.get_session_analytics(probe)
    assert b.analytics.version(tenant) == 2
    # and a third node, started now, scores the same without learning anything
    c = node(db, trees=50, min_history=10_000)  # its own settings train, never score
    assert await c.get_session_analytics(probe) == await a.get_session_analytics(probe)


async def test_a_node_trains_nothing_in_a_request(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    manager = node(db)
    ids = (await seed(db, tenant, normal_sessions(8, 30))).session_ids
    for session_id in ids:
        await manager.get_session_analytics(session_id)
    assert await counts(db, tenant) == {"samples": 0, "models": 0, "taken": 0}
    assert manager.analytics.version(tenant) == 0


# -- stored models are data, checked before use -------------------------------------------------


class _Boom:
    """Unpickling it creates ``path``: a stand-in for code run by a malicious model row."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def _forest_with_a_loop(meta: dict[str, Any], arrays: bytes) -> bytes:
    """The same model with one node pointing back at the root: a walk that never ends."""
    raw = bytearray(zlib.decompress(arrays))
    left = np.frombuffer(bytes(raw), dtype="<i4", count=meta["trees"] * meta["width"]).copy()
    inner = int(np.flatnonzero(left > 0)[0])
    left[inner] = 0
    raw[: left.nbytes] = left.tobytes()
    return zlib.compress(bytes(raw))


def _file(meta: object, arrays: bytes) -> bytes:
    header = json.dumps(meta).encode()
    return len(header).to_bytes(4, "big") + header + arrays


async def _champion_file(db: Database, tenant_id: str) -> tuple[int, bytes]:
    with tenant_scope(tenant_id):
        async with db.tenant_transaction() as conn:
            row = (
                await conn.execute(
                    select(ai_model_aliases.c.version, ai_model_versions.c.file)
                    .join(
                        ai_model_versions,
                        (ai_model_versions.c.model_name == ai_model_aliases.c.model_name)
                        & (ai_model_versions.c.version == ai_model_aliases.c.version),
                    )
                    .where(
                        ai_model_aliases.c.model_name == BEHAVIOUR_MODEL,
                        ai_model_aliases.c.alias == "champion",
                    )
                )
            ).one()
    return int(row.version), bytes(row.file)


async def _store(db: Database, tenant_id: str, file: bytes, *, rehash: bool) -> None:
    """Overwrite the champion's file as anyone with the application role could: with its
    SHA-256 recomputed (``rehash``) or left as it was."""
    version, _ = await _champion_file(db, tenant_id)
    values: dict[str, Any] = {"file": file}
    if rehash:
        values["sha256"] = hashlib.sha256(file).digest()
    with tenant_scope(tenant_id):
        async with db.tenant_transaction() as conn:
            await conn.execute(
                update(ai_model_versions)
                .where(
                    ai_model_versions.c.model_name == BEHAVIOUR_MODEL,
                    ai_model_versions.c.version == version,
                )
                .values(**values)
            )


async def test_a_corrupt_or_malicious_stored_model_is_refused(
    db: Database, new_tenant: NewTenant, tmp_path: Path
) -> None:
    tenant = (await new_tenant()).id
    a = node(db)
    await seed(db, tenant, normal_sessions(9, 30))
    probe = (await seed(db, tenant, normal_sessions(10, 1), live=True)).session_ids[0]
    assert (await a.learn_behaviour(tenant)).model_version == 1
    _, original = await _champion_file(db, tenant)
    size = int.from_bytes(original[:4], "big")
    meta, arrays = json.loads(original[4 : 4 + size]), original[4 + size :]
    marker = tmp_path / "executed"
    payload = pickle.dumps(_Boom(marker))
    attacks: list[bytes] = [
        payload,  # a pickle where the model goes
        _file(meta, payload),  # a pickle where the arrays go
        _file(meta, zlib.compress(payload)),
        _file({**meta, "trees": 1000, "width": 1 << 16}, arrays),  # gigabytes, if believed
        _file({**meta, "format": True}, arrays),
        _file({**meta, "features": ["request_rate"]}, arrays),
        _file(meta, arrays[:-10]),
        _file(meta, zlib.compress(zlib.decompress(arrays) + b"\0" * 8)),
        _file(meta, _forest_with_a_loop(meta, arrays)),
        _file({"format": 1, "__reduce__": "os.system"}, arrays),
        (1 << 30).to_bytes(4, "big") + original[4:],  # a header longer than the file
    ]
    # a valid model, changed: refused by its SHA-256 before anything is read
    other = json.loads(original[4 : 4 + size])
    for file, rehash in [(_file(other, arrays), False), *((f, True) for f in attacks)]:
        await _store(db, tenant, file, rehash=rehash)
        b = node(db)  # a node that reads the champion fresh
        report = await b.get_session_analytics(probe)
        assert (report["method"], report["model_version"]) == ("rules", 0), file[:60]
        assert 0 <= report["anomaly_score"] <= 1
        assert not b.analytics.usable(tenant)
        assert b.analytics.version(tenant) == 1  # refused once, not read again per request
    assert not marker.exists()
    # the original bytes with their SHA-256 score again: the check is what refused the others
    await _store(db, tenant, original, rehash=True)
    assert (await node(db).get_session_analytics(probe))["method"] == "model"
    await _store(db, tenant, payload, rehash=False)
    # a learner that finds the champion refused replaces it at its next step (node A, which
    # loaded version 1 before it was changed, keeps scoring with what it verified then)
    assert a.analytics.usable(tenant)
    repaired = await node(db).learn_behaviour(tenant)
    assert (repaired.trained, repaired.model_version) == (True, 2)
    assert (await node(db).get_session_analytics(probe))["method"] == "model"
    # the check could fail: unpickled, the payload would have run
    pickle.loads(payload)  # noqa: S301 - our own payload, to show what was refused
    assert marker.exists()


# -- tenants apart -----------------------------------------------------------------------------


async def test_one_tenants_sessions_never_train_anothers_model(
    db: Database, new_tenant: NewTenant
) -> None:
    one, other, empty = (await new_tenant()).id, (await new_tenant()).id, (await new_tenant()).id
    manager = node(db)
    ones = await seed(db, one, normal_sessions(11, 25))
    others = await seed(db, other, normal_sessions(12, 25))
    for tenant in (one, other, empty):
        await manager.learn_behaviour(tenant)
    assert set(await sample_ids(db, one)) <= set(ones.session_ids)
    assert set(await sample_ids(db, other)) <= set(others.session_ids)
    assert await counts(db, empty) == {"samples": 0, "models": 0, "taken": 0}
    assert manager.analytics.version(one) == manager.analytics.version(other) == 1
    fitted_one = manager.analytics.model.fitted(one)
    fitted_other = manager.analytics.model.fitted(other)
    assert fitted_one is not None
    assert fitted_other is not None
    assert not np.array_equal(fitted_one.centre, fitted_other.centre)
    # a session of one tenant is never scored with the other's model
    probe = ones.session_ids[0]
    assert (await manager.get_session_analytics(probe, tenant_id=one))["method"] == "model"
    assert (await node(db).get_session_analytics(probe))["model_version"] == 1


async def test_a_flood_of_one_tenant_does_not_starve_another(
    db: Database, new_tenant: NewTenant
) -> None:
    flood, quiet = (await new_tenant()).id, (await new_tenant()).id
    manager = node(db, min_history=10_000)
    learner = manager.learner
    learner.batch = 5
    await seed(db, flood, normal_sessions(13, 23))
    await seed(db, quiet, normal_sessions(14, 3))
    learner.notice(flood)
    learner.notice(quiet)
    steps = {s.tenant_id: s for s in await learner.run_once()}
    assert (steps[flood].taken, steps[quiet].taken) == (5, 3)
    assert learner.noticed == {flood}  # a full batch: back in the next round
    rounds = 1
    while learner.noticed:
        await learner.run_once()
        rounds += 1
    assert rounds == 5  # 23 sessions, 5 a round
    assert (await counts(db, flood))["taken"] == 23


async def test_a_sweep_notices_active_tenants_and_a_failing_one_stops_no_other(
    db: Database, new_tenant: NewTenant
) -> None:
    active, gone = (await new_tenant()).id, (await new_tenant()).id
    await TenantRegistry(db).update_status(gone, TenantStatus.DELETED)
    manager = node(db)
    learner = manager.learner
    assert await learner.sweep() >= 1
    assert active in learner.noticed
    assert gone not in learner.noticed
    assert "platform" not in learner.noticed
    fresh = node(db).learner
    fresh.notice("no-such-tenant-0")  # visited first, and fails: TenantNotFound
    fresh.notice(active)
    steps = await fresh.run_once()
    assert [s.tenant_id for s in steps] == [active]
    assert fresh.noticed == frozenset()


async def test_validations_and_revocations_notice_the_tenant(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    manager = node(db)
    learner = manager.learner
    session_id, _ = await manager.create_session(tenant, "u1", client=PHONE)
    assert learner.noticed == frozenset()
    await manager.revoke(session_id, tenant_id=tenant)
    assert learner.noticed == {tenant}


# -- a deleted tenant --------------------------------------------------------------------------


async def test_a_deleted_tenant_loses_its_samples_and_model(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    manager = node(db)
    await seed(db, tenant, normal_sessions(15, 25))
    assert (await manager.learn_behaviour(tenant)).trained
    await TenantRegistry(db).update_status(tenant, TenantStatus.SUSPENDED)
    assert (await manager.learn_behaviour(tenant)).purged is False  # suspended: kept
    assert (await counts(db, tenant))["models"] == 1
    await TenantRegistry(db).update_status(tenant, TenantStatus.DELETED)
    step = await manager.learn_behaviour(tenant)
    assert step.purged
    assert (await counts(db, tenant))["samples"] == (await counts(db, tenant))["models"] == 0
    assert manager.analytics.version(tenant) is None


async def test_erasing_a_tenant_removes_its_samples_and_model(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    await seed(db, tenant, normal_sessions(16, 25))
    assert (await node(db).learn_behaviour(tenant)).trained
    # no wait for the learner's audit entries (a registry version), integrated in the
    # background: the erasure takes turns with that integration (the tree's lock)
    await TenantRegistry(db).update_status(tenant, TenantStatus.DELETED)
    report = await LifecycleManager(db).erase_tenant(tenant)
    assert report.erased, report.as_dict()
    left = {t.table: t.left for t in report.tables}
    names = ("behaviour_samples", "ai_models", "ai_model_versions", "ai_model_aliases")
    assert {name: left[name] for name in names} == dict.fromkeys(names, 0)
    deleted = {t.table: t.deleted for t in report.tables}
    assert deleted["behaviour_samples"] > 0
    assert deleted["ai_model_versions"] > 0


# -- in the service ----------------------------------------------------------------------------


async def test_the_service_runs_a_learner_that_follows_deletions(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = app.state.tenantry
        learner = state.sessions.learner
        assert learner.running
        await learner.close()  # the rounds are driven here, not by the clock
        tenant = f"svc-{uuid.uuid4().hex[:12]}"
        await state.tenants.create(tenant, "Service")
        session_id, _ = await state.sessions.create_session(tenant, "u1", client=PHONE)
        await state.sessions.revoke(session_id, tenant_id=tenant)
        assert tenant in learner.noticed  # revoked through the service's manager
        await learner.run_once()
        await state.tenants.update_status(tenant, TenantStatus.DELETED)
        assert tenant in learner.noticed  # its samples and model go in the next round
        [step] = [s for s in await learner.run_once() if s.tenant_id == tenant]
        assert step.purged
