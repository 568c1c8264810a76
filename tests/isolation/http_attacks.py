"""Attacks on one route of the app by another tenant: :func:`attack` returns what went wrong.

The attacker sends the route, with each of its credentials (the service token acting for it,
its strongest session, its ``*`` API key, those two again naming the victim in ``X-Tenant-ID``,
and none at all), the route's request naming the victim's ids; where the request names a tenant,
also naming its own tenant with the victim's other ids. A breach is:

- a 5xx (invariant 9), or an exception out of the app;
- a 2xx whose answer carries a marker of the victim that the request did not send;
- an answer that depends on the victim's data: the same request naming ids of a tenant that
  does not exist (a *ghost*) must get the same status and, past what differs between two ghosts
  (fresh ids, challenges, times), the same answer. A 403 for the victim's session but 404 for a
  ghost's would tell the attacker that the session exists (invariant 5);
- a 404 to a request naming another tenant (in ``X-Tenant-ID``, a ``tenant_id`` or an id that
  embeds its tenant) without a ``foreign_tenant_probe`` event in the caller's tenant
  (invariant 5: the probe is recorded);
- a change of the victim (settings, roles, sessions, keys, status, audit log), whatever answer
  the request got;
- without a credential, anything but 401 from a route that is not public.

A platform route (``require_platform``) is the operator's: every session and API key of either
tenant, with or without ``X-Tenant-ID``, must get 401 or 403 there.

The *control*: the route's request with the attacker's own ids must succeed (2xx) with each of
its credentials that the access policy lets perform the route's action, so that the refusals of
the attacks are the boundary's doing, not a malformed request's or a powerless credential's. A
route whose request carries a signed WebAuthn response cannot be forged by the generator and has
no control; it is attacked all the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tenantry.access import Policy
from tenantry.access.probes import PROBE_EVENT
from tenantry.threats import SecurityEvents

from .http_requests import Call, Endpoint, build
from .http_world import Credential, IdKind, TenantData, Watch, fresh, ghost

__all__ = ["ANONYMOUS", "Sides", "attack"]

ANONYMOUS = Credential("no credential", "none", None, {})
#: The access policy, as the app enforces it: which credential may perform which action.
POLICY = Policy()
_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?")
_FRESH = re.compile(r"\b(tnt_[sk]_|ses_|key_)[a-z0-9][a-z0-9_-]{2,62}\.[A-Za-z0-9_-]+")
_MISSING = object()


@dataclass(frozen=True)
class Sides:
    """One attack's world: the victim's data (and the watch on it), the victim's credentials
    (refused on platform routes too), the attacker's tenant and credentials."""

    victim: TenantData
    watch: Watch
    victim_credentials: tuple[Credential, ...]
    attacker: str
    attacker_credentials: tuple[Credential, ...]
    #: The security events of the app's database, where the attacker's probes are recorded.
    events: SecurityEvents

    def attackers(self) -> list[Credential]:
        own = list(self.attacker_credentials)
        named = [c.naming(self.victim.tenant, "victim") for c in own if c.kind != "service"]
        return [*own, *named, ANONYMOUS]


async def attack(client: httpx.AsyncClient, endpoint: Endpoint, sides: Sides) -> list[str]:
    """Every breach of the boundary the attacker finds at ``endpoint``; [] when none."""
    if endpoint.access == "platform":
        return await _attack_platform(client, endpoint, sides)
    run = _Run(client, endpoint, sides)
    victim = sides.victim.ids
    variants = [dict(victim)]
    if "tenant" in endpoint.kinds:
        variants.append({**victim, "tenant": sides.attacker})
    for ids in variants:
        for credential in sides.attackers():
            await run.one(ids, credential)
    if changed := await sides.watch.changes(client):
        run.findings.append(f"{endpoint}: the victim changed under the attacks: {changed}")
    if endpoint.access == "tenant" and not endpoint.signed:
        run.findings += await _control(client, endpoint, sides)
    return run.findings


@dataclass
class _Run:
    """The attacks on one route: what they found, and the 404s naming another tenant."""

    client: httpx.AsyncClient
    endpoint: Endpoint
    sides: Sides
    findings: list[str] = field(default_factory=list)
    probes: int = 0  # recorded in the attacker's tenant so far
    # The same two ghosts throughout: a ghost's requests then have the history of the victim's
    # (a write naming the victim's id in the attacker's tenant is seen by the next request).
    ghosts: tuple[dict[IdKind, str], ...] = ()

    def __post_init__(self) -> None:
        self.ghosts = (ghost(self.sides.victim), ghost(self.sides.victim))

    async def send(self, call: Call, tenants: tuple[str, ...]) -> httpx.Response:
        """The answer to ``call``, which names ``tenants``: if it names one and has a credential,
        its 404 must have recorded a probe in the attacker's tenant."""
        response = await call.send(self.client)
        if call.credential.kind != "none" and any(t in call.sent() for t in tenants):
            before, self.probes = self.probes, await self.recorded()
            if response.status_code == 404 and self.probes == before:
                self.findings.append(
                    f"{call} -> 404: it names another tenant, but no probe was recorded"
                )
        return response

    async def one(self, ids: Mapping[IdKind, str], credential: Credential) -> None:
        """The request naming ``ids``, then the same naming each ghost's instead."""
        victim = self.sides.victim
        call = build(self.endpoint, ids, credential)
        response = await self.send(call, (victim.tenant,))
        self.findings += _judge(self.endpoint, call, response, victim)
        if not any(value in call.sent() for value in victim.ids.values()):
            return
        answers, swaps = [], []
        for spectre in self.ghosts:
            swap = {v: spectre[k] for k, v in victim.ids.items()}
            named = {k: swap[v] if victim.ids.get(k) == v else v for k, v in ids.items()}
            headers = {k: swap.get(v, v) for k, v in credential.headers.items()}
            twin = build(self.endpoint, named, replace(credential, headers=headers))
            answers.append(await self.send(twin, (spectre["tenant"],)))
            swaps.append(swap)
        if _differs(response, answers, swaps[0]):
            self.findings.append(
                f"{call} -> {response.status_code} {response.text[:300]}, but naming ids that "
                f"exist nowhere -> {answers[0].status_code} {answers[0].text[:300]}: the answer "
                "depends on the victim's data"
            )

    async def recorded(self) -> int:
        """How many probes the attacker's tenant (a new one: all are this run's) recorded."""
        since = datetime.now(UTC) - timedelta(days=1)
        events = await self.sides.events.since(self.sides.attacker, since, kinds=(PROBE_EVENT,))
        return len(events)


def _judge(
    endpoint: Endpoint, call: Call, response: httpx.Response, victim: TenantData
) -> list[str]:
    status = response.status_code
    if status >= 500:
        return [f"{call} -> {status} {response.text[:300]}"]
    if call.credential.kind == "none" and endpoint.access != "public" and status != 401:
        return [f"{call} -> {status} without a credential (expected 401): {response.text[:300]}"]
    if response.is_success:
        answer, sent = f"{response.text} {dict(response.headers)}", call.sent()
        leaked = sorted(m for m in victim.markers if m in answer and m not in sent)
        if leaked:
            return [f"{call} -> {status} carries the victim's {leaked}: {response.text[:300]}"]
    return []


def _differs(
    response: httpx.Response, ghosts: list[httpx.Response], swap: Mapping[str, str]
) -> bool:
    """Whether the answer naming the victim's ids differs from the first ghost's, past what
    differs between the two ghosts' answers."""
    first, second = _shape(ghosts[0], {}), _shape(ghosts[1], {})
    if first[0] != second[0]:
        return False  # the ghosts get different statuses: nothing to compare with
    noisy = {
        path
        for path in first[1].keys() | second[1].keys()
        if first[1].get(path, _MISSING) != second[1].get(path, _MISSING)
    }
    mine = _shape(response, swap)
    return mine[0] != first[0] or any(
        mine[1].get(path, _MISSING) != first[1].get(path, _MISSING)
        for path in mine[1].keys() | first[1].keys()
        if path not in noisy
    )


def _shape(response: httpx.Response, swap: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    """(status, the answer's leaves by path): a 2xx's body, else the problem's title; the
    victim's ids swapped for a ghost's, times and fresh ids masked."""
    text = response.text
    for old in sorted(swap, key=len, reverse=True):
        text = text.replace(old, swap[old])
    text = _FRESH.sub(r"\1<fresh>", _TIME.sub("<time>", text))
    try:
        value = json.loads(text) if text else None
    except ValueError:
        value = text
    if not response.is_success:
        value = value.get("title") if isinstance(value, dict) else None
    return response.status_code, dict(_leaves(value, ""))


def _leaves(value: Any, path: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{path}/{k}")]
    if isinstance(value, list) and value:
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{path}/{i}")]
    return [(path, value)]


async def _attack_platform(
    client: httpx.AsyncClient, endpoint: Endpoint, sides: Sides
) -> list[str]:
    findings = []
    tenants = [
        c for c in (*sides.attacker_credentials, *sides.victim_credentials) if c.kind != "service"
    ]
    named = [c.naming(c.tenant or "", "its own") for c in tenants]
    for credential in [*tenants, *named, ANONYMOUS]:
        call = build(endpoint, sides.victim.ids, credential)
        response = await call.send(client)
        expected = (401,) if credential.kind == "none" else (401, 403)
        if response.status_code not in expected:
            findings.append(
                f"{call} -> {response.status_code} on a platform route (expected "
                f"{' or '.join(map(str, expected))}): {response.text[:300]}"
            )
    return findings


async def _control(client: httpx.AsyncClient, endpoint: Endpoint, sides: Sides) -> list[str]:
    """Each credential of the attacker that the policy lets perform the route's action succeeds
    with the attacker's own ids (new objects each, since a control may use them up)."""
    findings = []
    for credential in sides.attacker_credentials:
        if not all(POLICY.decide(credential.roles, action) for action in endpoint.actions):
            continue
        own = await fresh(client, sides.attacker, credential.user or "", endpoint.kinds)
        call = build(endpoint, own, credential)
        response = await call.send(client)
        if not response.is_success:
            findings.append(
                f"control: {call} -> {response.status_code} {response.text[:300]}: on its own "
                "data, with a credential the policy allows, so the refusals of the attacks with "
                "it prove nothing (teach http_requests.sample, or give the credential its power)"
            )
    return findings
