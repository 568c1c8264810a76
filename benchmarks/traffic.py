"""Mixed traffic of many tenants against a running service, and what it must not lose.

:class:`Traffic` drives ``concurrency`` coroutines (asyncio + httpx, one client) that each pick a
tenant and one of :data:`ACTIONS` at random, across every manager: sessions (create, validate,
revoke), API keys (create, use), roles, settings (write, read through the cache), metadata
(create, search), monitoring queries, alerts (silences, rules, alerts), workflows (create, list
from the replica) and threats (from the replica). Every answer is recorded as a :class:`Call`
(route, route class, status, whether it is problem+json, start and end).

Each tenant's id and every value it writes carry its **marker** (12 hex digits); every answer's
body is searched for the other tenants' markers (:attr:`Traffic.leaks`). Every write answered 2xx
goes to the **ledger**; :meth:`Traffic.verify` reads each one back after the run (a write not
found is *lost*), and waits for every acknowledged saga to end.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

__all__ = ["ACTIONS", "PROBES", "Call", "Tenant", "Traffic"]


@dataclass(frozen=True, slots=True)
class Call:
    route: str  # method and path template: "GET /sessions/{id}/validate"
    kind: str  # the route class: sessions, keys, access, cache, metadata, ...
    status: int  # 0: no answer (the connection failed: ``error`` says how)
    problem: bool  # the body is application/problem+json
    started: float
    ended: float
    error: str = ""


@dataclass
class Tenant:
    id: str
    marker: str
    headers: dict[str, str]
    sessions: list[tuple[str, str]] = field(default_factory=list)  # (id, token), live
    revoked: list[tuple[str, str]] = field(default_factory=list)
    keys: list[tuple[str, str]] = field(default_factory=list)  # (id, secret)
    settings: dict[str, int] = field(default_factory=dict)  # key -> the value acknowledged
    users: dict[str, str] = field(default_factory=dict)  # user -> role granted
    records: list[str] = field(default_factory=list)
    silences: list[str] = field(default_factory=list)
    workflows: list[str] = field(default_factory=list)
    #: the newest saga acknowledged, and when its answer came
    newest: tuple[str, float] | None = None


@dataclass
class Traffic:
    client: httpx.AsyncClient
    tenants: list[Tenant] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    leaks: list[tuple[str, str]] = field(default_factory=list)  # (route, whose marker)
    #: when a list of sagas (from the replica) was sent that missed one acknowledged before
    stale: list[float] = field(default_factory=list)
    _pattern: re.Pattern[str] | None = None
    _owner: dict[str, str] = field(default_factory=dict)
    seed: int = 7

    # -- set-up ----------------------------------------------------------------------------------
    async def add_tenants(self, count: int, token: str) -> None:
        for _ in range(count):
            marker = uuid.uuid4().hex[:12]
            tenant = f"lf-{marker}"
            answer = await self.client.post(
                "/tenants",
                json={"id": tenant, "display_name": f"Load {marker}"},
                headers={"Authorization": f"Bearer {token}"},
            )
            answer.raise_for_status()
            headers = {"Authorization": f"Bearer {token}", "X-Tenant-ID": tenant}
            self.tenants.append(Tenant(tenant, marker, headers))
            self._owner[marker] = tenant
        self._pattern = re.compile("|".join(self._owner))

    # -- one request -----------------------------------------------------------------------------
    async def call(
        self,
        tenant: Tenant,
        kind: str,
        method: str,
        route: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response | None:
        route = f"{method} {route}"
        started = time.perf_counter()
        try:
            answer = await self.client.request(
                method, path, headers=headers or tenant.headers, **kwargs
            )
        except httpx.TransportError as exc:
            ended = time.perf_counter()
            self.calls.append(Call(route, kind, 0, False, started, ended, type(exc).__name__))
            return None
        ended = time.perf_counter()
        problem = answer.headers.get("content-type", "").startswith("application/problem+json")
        self.calls.append(Call(route, kind, answer.status_code, problem, started, ended))
        assert self._pattern is not None
        for found in set(self._pattern.findall(answer.text)):
            if found != tenant.marker:
                self.leaks.append((route, self._owner[found]))
        return answer

    # -- the run ---------------------------------------------------------------------------------
    async def run(
        self, seconds: float, concurrency: int, stop: asyncio.Event | None = None
    ) -> None:
        """``concurrency`` coroutines for ``seconds`` (or until ``stop`` is set)."""
        rng = random.Random(self.seed)
        self.seed += 1
        deadline = time.perf_counter() + seconds
        weights = [w for _, w in ACTIONS]

        async def loop() -> None:
            while time.perf_counter() < deadline and not (stop and stop.is_set()):
                action = rng.choices(ACTIONS, weights)[0][0]
                await action(self, rng.choice(self.tenants), rng)

        await asyncio.gather(*(loop() for _ in range(concurrency)))

    async def probe(self, since: float, within: float) -> None:
        """Send each route class's :data:`PROBES` request again and again until one sent after
        ``since`` succeeds (or ``within`` seconds): its recovery is then measured exactly."""
        rng = random.Random(self.seed)
        deadline = time.perf_counter() + within

        async def until_success(kind: str, action: Action) -> None:
            while time.perf_counter() < deadline:
                await action(self, rng.choice(self.tenants), rng)
                if any(
                    c.kind == kind and c.started >= since and 200 <= c.status < 300
                    for c in reversed(self.calls)
                ):
                    return
                await asyncio.sleep(0.05)

        await asyncio.gather(*(until_success(k, a) for k, a in PROBES.items()))

    # -- after the run ---------------------------------------------------------------------------
    async def _get(self, tenant: Tenant, path: str) -> httpx.Response:
        for _ in range(50):  # a read during recovery may still be refused: ask again
            answer = await self.client.get(path, headers=tenant.headers)
            if answer.status_code < 500 and answer.status_code != 429:
                return answer
            await asyncio.sleep(0.2)
        return answer

    async def verify(self, within: float = 60.0) -> Counter[str]:
        """Read back every acknowledged write, and wait (``within`` s) for every acknowledged
        saga to end: the lost writes by kind (empty: none lost)."""
        lost: Counter[str] = Counter()
        gate = asyncio.Semaphore(8)

        async def one(t: Tenant) -> None:
            async with gate:
                await self._verify_tenant(t, lost)

        await asyncio.gather(*(one(t) for t in self.tenants))
        deadline = time.perf_counter() + within
        for t in self.tenants:
            for wid in t.workflows:
                while True:
                    answer = await self._get(t, f"/workflows/{wid}")
                    status = answer.json().get("status") if answer.status_code == 200 else None
                    if status in ("completed", "compensated", "failed", "cancelled"):
                        break
                    if answer.status_code == 404:
                        lost["workflow"] += 1
                        break
                    if time.perf_counter() > deadline:
                        lost["workflow unfinished"] += 1
                        break
                    await asyncio.sleep(0.2)
        return +lost

    async def _verify_tenant(self, t: Tenant, lost: Counter[str]) -> None:
        for key, value in t.settings.items():
            answer = await self._get(t, f"/settings/{key}")
            lost["setting"] += answer.status_code != 200 or answer.json()["value"] != value
        for user, role in t.users.items():
            answer = await self._get(t, f"/roles/{user}")
            lost["role"] += answer.status_code != 200 or role not in answer.text
        for record in t.records:
            lost["metadata"] += (await self._get(t, f"/metadata/{record}")).status_code != 200
        for silence in t.silences:
            answer = await self._get(t, f"/alerts/silences/{silence}")
            lost["silence"] += answer.status_code != 200
        listed = (await self._get(t, "/api-keys")).text
        lost["api key"] += sum(key not in listed for key, _ in t.keys)
        for sid, token in t.sessions:
            auth = {"Authorization": f"Bearer {token}"}
            answer = await self.client.get(f"/sessions/{sid}/validate", headers=auth)
            lost["session"] += answer.status_code != 200
        for sid, token in t.revoked:  # a revoke acknowledged is a write too
            auth = {"Authorization": f"Bearer {token}"}
            answer = await self.client.get(f"/sessions/{sid}/validate", headers=auth)
            lost["session revoke"] += answer.status_code == 200

    @property
    def writes(self) -> int:
        return sum(
            len(t.settings)
            + len(t.users)
            + len(t.records)
            + len(t.silences)
            + len(t.keys)
            + len(t.sessions)
            + len(t.revoked)
            + len(t.workflows)
            for t in self.tenants
        )


def _ok(answer: httpx.Response | None) -> bool:
    return answer is not None and answer.is_success


# -- the actions: (traffic, tenant, rng) ---------------------------------------------------------


async def session_create(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    user = f"{t.marker}-u{rng.randrange(10**9)}"  # one session a user: none evicted by the cap
    body = {"tenant_id": t.id, "user_id": user, "client": {"user_agent": f"agent-{t.marker}"}}
    answer = await tr.call(t, "sessions", "POST", "/sessions/create", "/sessions/create", json=body)
    if _ok(answer):
        assert answer is not None
        made = answer.json()
        t.sessions.append((made["session_id"], made["token"]))


async def session_validate(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    if not t.sessions:
        return await session_create(tr, t, rng)
    sid, token = rng.choice(t.sessions)
    route = "/sessions/{id}/validate"
    auth = {"Authorization": f"Bearer {token}"}
    await tr.call(t, "sessions", "GET", route, f"/sessions/{sid}/validate", headers=auth)
    return None


async def session_revoke(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    if len(t.sessions) < 3:
        return await session_create(tr, t, rng)
    pair = t.sessions.pop(rng.randrange(len(t.sessions)))
    answer = await tr.call(t, "sessions", "DELETE", "/sessions/{id}", f"/sessions/{pair[0]}")
    if _ok(answer):
        t.revoked.append(pair)
    # not acknowledged: it may or may not be revoked, so it is checked neither way
    return None


async def key_create(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    body = {
        "name": f"key-{t.marker}",
        "service_account": f"robot-{t.marker}",
        "scopes": ["settings:read"],
    }
    answer = await tr.call(t, "keys", "POST", "/api-keys", "/api-keys", json=body)
    if _ok(answer):
        assert answer is not None
        made = answer.json()
        t.keys.append((made["key_id"], made["key"]))


async def key_use(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    """An access check: the API key's scope, then the settings it may read."""
    if not t.keys:
        return await key_create(tr, t, rng)
    auth = {"Authorization": f"Bearer {rng.choice(t.keys)[1]}"}
    await tr.call(t, "access", "GET", "/settings", "/settings", headers=auth)
    return None


async def role_grant(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    user = f"{t.marker}-u{rng.randrange(20)}"
    role = "viewer"
    answer = await tr.call(t, "access", "PUT", "/roles/{user}/{role}", f"/roles/{user}/{role}")
    if _ok(answer):
        t.users[user] = role


async def setting_put(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    key = f"k{rng.randrange(10**9)}-{t.marker}"  # each write its own key: no race to judge
    value = rng.randrange(1_000_000)
    answer = await tr.call(
        t, "settings", "PUT", "/settings/{key}", f"/settings/{key}", json={"value": value}
    )
    if _ok(answer):
        t.settings[key] = value


async def setting_get(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    if not t.settings:
        return await setting_put(tr, t, rng)
    key = rng.choice(list(t.settings))
    await tr.call(t, "cache", "GET", "/settings/{key}", f"/settings/{key}")
    return None


async def metadata_create(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    body = {
        "metadata_type": "business",
        "content": {"title": f"track {t.marker} {rng.randrange(1000)}", "genre": "jazz"},
    }
    answer = await tr.call(t, "metadata", "POST", "/metadata/create", "/metadata/create", json=body)
    if _ok(answer):
        assert answer is not None
        t.records.append(answer.json()["id"])


async def metadata_search(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    body = {"query": "jazz track", "semantic_search": False}
    await tr.call(t, "metadata", "POST", "/metadata/search", "/metadata/search", json=body)


async def monitoring_query(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    now = datetime.now(UTC)
    params = {
        "name": "http_request_seconds",
        "start": (now - timedelta(minutes=5)).isoformat(),
        "end": now.isoformat(),
        "step": 60,
        "aggregation": "count",
    }
    await tr.call(
        t, "monitoring", "GET", "/monitoring/metrics", "/monitoring/metrics", params=params
    )


async def silence_create(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {
        "matchers": [f'alertname="mute-{t.marker}"'],
        "ends_at": ends,
        "comment": f"load {t.marker}",
    }
    answer = await tr.call(t, "alerts", "POST", "/alerts/silences", "/alerts/silences", json=body)
    if _ok(answer):
        assert answer is not None
        t.silences.append(str(answer.json()["id"]))


async def alerts_read(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    path = rng.choice(["/alerts", "/alerts/rules", "/alerts/silences"])
    await tr.call(t, "alerts", "GET", path, path)


async def workflow_create(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    body = {
        "definition": "release_track",
        "input": {
            "title": f"song {t.marker}",
            "artists": ["Ada"],
            "release_date": "2027-01-01",
            "country": "DE",
            "registrant": "TNT",
            "stores": ["spotify"],
        },
    }
    answer = await tr.call(t, "workflows", "POST", "/workflows", "/workflows", json=body)
    if _ok(answer):
        assert answer is not None
        t.workflows.append(str(answer.json()["id"]))
        t.newest = (t.workflows[-1], time.perf_counter())
        await workflow_list(tr, t, rng)  # read your write, from the replica


async def workflow_list(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    """From the replica: stale if it misses the newest saga acknowledged before it was sent."""
    newest, started = t.newest, time.perf_counter()
    answer = await tr.call(
        t, "replica reads", "GET", "/workflows", "/workflows", params={"limit": 20}
    )
    if newest is None or newest[1] >= started or answer is None or not answer.is_success:
        return
    if newest[0] not in {w["id"] for w in answer.json()}:
        tr.stale.append(started)


async def threats(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    """From the replica."""
    await tr.call(t, "replica reads", "GET", "/security/threats", "/security/threats")


async def cache_stats(tr: Traffic, t: Tenant, rng: random.Random) -> None:
    await tr.call(t, "cache", "GET", "/cache/stats", "/cache/stats")


Action = Callable[[Traffic, Tenant, random.Random], Awaitable[None]]

#: Every action with its weight in the mix.
ACTIONS: list[tuple[Action, int]] = [
    (session_create, 6),
    (session_validate, 14),
    (session_revoke, 2),
    (key_create, 2),
    (key_use, 8),
    (role_grant, 3),
    (setting_put, 6),
    (setting_get, 14),
    (metadata_create, 5),
    (metadata_search, 4),
    (monitoring_query, 4),
    (silence_create, 2),
    (alerts_read, 4),
    (workflow_create, 2),
    (workflow_list, 4),
    (threats, 3),
    (cache_stats, 3),
]

#: One request of each route class, sent until it succeeds after a fault (:meth:`Traffic.probe`).
PROBES: dict[str, Action] = {
    "sessions": session_create,
    "keys": key_create,
    "access": role_grant,
    "settings": setting_put,
    "cache": setting_get,
    "metadata": metadata_create,
    "monitoring": monitoring_query,
    "alerts": silence_create,
    "workflows": workflow_create,
    "replica reads": workflow_list,
}
