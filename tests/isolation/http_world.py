"""Tenants for the HTTP isolation suite, built over HTTP the way a platform backend would.

- :func:`populate`: a victim with data of every kind a route can reach (settings, roles,
  sessions, an API key, a passkey and a pending challenge, audit entries, a security event, cache
  traffic), its ids by kind, and its **markers**: values that only its data holds, so an answer
  carrying one carries the victim's data.
- :func:`credentials`: every kind of credential of a tenant, each as strong as the tenant can
  make it; :func:`fresh` makes new objects of a tenant for a control to use up.
- :class:`Watch`: what an attack must not change in the victim, read again after each attack
  (its fixtures too: the victim's are not sensitive, so reading them records no access).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx

from tenantry.principal import PLATFORM_ROLE
from tests.conftest import TOKEN
from tests.passkeys.authenticator import SoftAuthenticator, b64url

__all__ = [
    "Credential",
    "IdKind",
    "TenantData",
    "Watch",
    "create_tenant",
    "credentials",
    "fresh",
    "ghost",
    "populate",
]

#: The kinds of ids a request can name; ``http_requests.kind_of`` reads them from names.
IdKind = Literal[
    "tenant",
    "user",
    "session",
    "key",
    "setting",
    "challenge",
    "metadata",
    "schema",
    "alert_rule",
    "receiver",
    "fixture",
    "silence",
    "model",
    "job",
    "workflow",
]


def _hex() -> str:
    return uuid.uuid4().hex[:12]


def _ok(response: httpx.Response, what: str) -> Any:
    if not response.is_success:
        raise AssertionError(f"could not {what}: {response.status_code} {response.text}")
    return response.json() if response.content else None


def _platform(tenant: str) -> dict[str, str]:
    return {**TOKEN, "X-Tenant-ID": tenant}


@dataclass(frozen=True)
class TenantData:
    """A tenant's ids by kind, its users, and its markers."""

    tenant: str
    ids: dict[IdKind, str]
    users: tuple[str, ...]
    markers: frozenset[str] = field(repr=False)


@dataclass(frozen=True)
class Credential:
    """How a request authenticates. ``name`` is what a report shows instead of the secret,
    ``roles`` what the access policy is asked about, ``user`` whose data a control acts on."""

    name: str
    kind: Literal["service", "session", "api_key", "none"]
    tenant: str | None
    headers: dict[str, str] = field(repr=False)
    roles: frozenset[str] = frozenset()
    user: str | None = None

    def naming(self, tenant: str, label: str) -> Credential:
        """The same credential with ``X-Tenant-ID: tenant`` (a session or key naming another)."""
        headers = {**self.headers, "X-Tenant-ID": tenant}
        return replace(self, name=f"{self.name} + X-Tenant-ID {label}", headers=headers)


async def create_tenant(client: httpx.AsyncClient, prefix: str) -> str:
    tenant = f"{prefix}-{_hex()}"
    body = {"id": tenant, "display_name": f"Tenant {tenant}"}
    _ok(await client.post("/tenants", json=body, headers=TOKEN), "create a tenant")
    return tenant


async def _post(client: httpx.AsyncClient, tenant: str, path: str, body: dict[str, Any]) -> Any:
    return _ok(await client.post(path, json=body, headers=_platform(tenant)), f"POST {path}")


async def _passkey(client: httpx.AsyncClient, tenant: str, user: str) -> SoftAuthenticator:
    """``user``'s authenticator, holding the passkey just registered for them."""
    auth = SoftAuthenticator()
    body = {"user_id": user, "user_name": f"{user}@label"}
    opts = await _post(client, tenant, "/passkeys/register/options", body)
    body = {"user_id": user, "challenge_id": opts["challenge_id"]}
    await _post(
        client,
        tenant,
        "/passkeys/register/verify",
        {**body, "credential": auth.create(opts["options"])},
    )
    return auth


async def _challenge(client: httpx.AsyncClient, tenant: str, user: str) -> dict[str, Any]:
    """A pending authentication challenge of ``user``: ``challenge_id`` and ``options``."""
    found: dict[str, Any] = await _post(
        client, tenant, "/passkeys/authenticate/options", {"user_id": user}
    )
    return found


async def populate(client: httpx.AsyncClient, prefix: str) -> TenantData:
    """A new tenant with data of every kind: its ids by kind and its markers."""
    tenant = await create_tenant(client, prefix)
    headers = _platform(tenant)
    admin, viewer = f"{prefix}-admin-{_hex()}", f"{prefix}-viewer-{_hex()}"
    markers = {tenant, admin, viewer}
    settings = [f"{prefix}-setting-{_hex()}", f"{prefix}-other-{_hex()}"]
    for key in settings:
        secret, nested = f"secret-{_hex()}", f"value-{_hex()}"
        value = {"secret": secret, "nested": [nested]}
        put = await client.put(f"/settings/{key}", json={"value": value}, headers=headers)
        _ok(put, "write a setting")
        markers |= {key, secret, nested}
    for user, role in ((admin, "admin"), (viewer, "viewer")):
        _ok(await client.put(f"/roles/{user}/{role}", headers=headers), "grant a role")
    sessions = {}
    for user in (admin, viewer):
        agent, device = f"agent-{_hex()}", f"device-{_hex()}"
        client_info = {"user_agent": agent, "device_id": device}
        body = {"tenant_id": tenant, "user_id": user, "client": client_info}
        sessions[user] = await _post(client, tenant, "/sessions/create", body)
        markers |= {agent, device, sessions[user]["session_id"], sessions[user]["token"]}
    name, account = f"key-{_hex()}", f"account-{_hex()}"
    body = {"name": name, "service_account": account, "scopes": ["settings:read"]}
    key = await _post(client, tenant, "/api-keys", body)
    markers |= {name, account, key["key_id"], key["key"]}
    auth = await _passkey(client, tenant, admin)
    markers |= {b64url(credential_id) for credential_id in auth.credentials}
    challenge = (await _challenge(client, tenant, admin))["challenge_id"]
    markers.add(challenge)
    title, secret = f"title-{_hex()}", f"iban-{_hex()}"
    body = {"metadata_type": "business", "content": {"title": title, "iban": secret}}
    record = await _post(client, tenant, "/metadata/create", body | {"sensitive_fields": ["iban"]})
    markers |= {title, secret, record["id"]}
    schema_name, described = f"{prefix}-schema-{_hex()}", f"described-{_hex()}"
    schema = {"type": "object", "description": described, "additionalProperties": False}
    await _post(client, tenant, f"/schemas/{schema_name}", {"schema": schema})
    markers |= {schema_name, described}
    rule_name, metric = f"{prefix}-rule-{_hex()}", f"m{_hex()}"
    await _alert_rule(client, tenant, rule_name, metric)
    receiver, hook = f"{prefix}-receiver-{_hex()}", f"https://hooks.slack.com/services/{_hex()}"
    await _receiver(client, tenant, receiver, hook)
    fixture_name, fixture_title = f"{prefix}-fixture-{_hex()}", f"ftitle-{_hex()}"
    fixture = await _fixture(client, tenant, fixture_name, fixture_title)
    muted, why = f"{prefix}-muted-{_hex()}", f"why-{_hex()}"
    silence = await _silence(client, tenant, muted, why)
    markers |= {rule_name, metric, receiver, hook, fixture_name, fixture_title, fixture}
    markers |= {muted, why, silence}
    model, source = f"{prefix}-model-{_hex()}", f"source-{_hex()}"
    job = await _trained(client, tenant, model, source)
    markers |= {model, source, job}
    title = f"track-{_hex()}"
    workflow = await _workflow(client, tenant, title)
    markers |= {title, workflow}
    # Activity: the viewer and the key read (cache, session activity), and the viewer's session
    # names a tenant that does not exist (a security event, in this tenant's threat report).
    viewer_auth = {"Authorization": f"Bearer {sessions[viewer]['token']}"}
    for auth_headers in (viewer_auth, {"Authorization": f"Bearer {key['key']}"}):
        _ok(await client.get("/settings", headers=auth_headers), "read settings")
    probe = await client.get("/settings", headers={**viewer_auth, "X-Tenant-ID": f"no-{_hex()}"})
    assert probe.status_code == 404, probe.text
    ids: dict[IdKind, str] = {
        "tenant": tenant,
        "user": admin,
        "session": sessions[admin]["session_id"],
        "key": key["key_id"],
        "setting": settings[0],
        "challenge": challenge,
        "metadata": record["id"],
        "schema": schema_name,
        "alert_rule": rule_name,
        "receiver": receiver,
        "fixture": fixture,
        "silence": silence,
        "model": model,
        "job": job,
        "workflow": workflow,
    }
    return TenantData(tenant, ids, (admin, viewer), frozenset(markers))


def ghost(data: TenantData) -> dict[IdKind, str]:
    """Ids of the kinds and shapes of ``data``'s (its random parts drawn again), in a tenant that
    does not exist."""

    def again(value: str) -> str:
        return re.sub(r"[0-9a-f]{12}$", _hex(), value)

    tenant, ids = again(data.tenant), data.ids
    return {
        "tenant": tenant,
        "user": again(ids["user"]),
        "session": f"ses_{tenant}.{secrets.token_urlsafe(16)}",
        "key": f"key_{tenant}.{secrets.token_urlsafe(16)}",
        "setting": again(ids["setting"]),
        "challenge": secrets.token_urlsafe(24),
        "metadata": f"md_{tenant}.{secrets.token_urlsafe(16)}",
        "schema": again(ids["schema"]),
        "alert_rule": again(ids["alert_rule"]),
        "receiver": again(ids["receiver"]),
        "fixture": f"fx_{tenant}.{secrets.token_urlsafe(16)}",
        "silence": str(uuid.uuid4()),
        "model": again(ids["model"]),
        "job": f"job_{secrets.token_urlsafe(12)}",
        "workflow": str(uuid.uuid4()),
    }


async def credentials(client: httpx.AsyncClient, tenant: str, whose: str) -> list[Credential]:
    """Every kind of credential of ``tenant`` (named ``whose``'s), each as strong as the tenant
    can make it:

    - the service token acting for it;
    - an ADMIN session at CRITICAL level of an admin (``root``), opened with a passkey (so no
      step-up is due for the next minutes), bound to its device;
    - an API key with scope ``*``.

    A control acts for ``root`` with the session (a session registers and uses only its own
    passkeys), and for ``owner``, who also has a passkey, with the others.
    """
    headers = _platform(tenant)
    root, owner, device = f"root-{_hex()}", f"owner-{_hex()}", f"laptop-{_hex()}"
    _ok(await client.put(f"/roles/{root}/admin", headers=headers), "grant admin")
    auth = await _passkey(client, tenant, root)
    await _passkey(client, tenant, owner)
    challenge = await _challenge(client, tenant, root)
    body = {
        "tenant_id": tenant,
        "user_id": root,
        "session_type": "admin",
        "security_level": "critical",
        "client": {"device_id": device},
        "passkey_challenge_id": challenge["challenge_id"],
        "passkey_credential": auth.get(challenge["options"]),
    }
    session = await _post(client, tenant, "/sessions/create", body)
    key_body = {"name": "everything", "service_account": f"robot-{_hex()}", "scopes": ["*"]}
    key = await _post(client, tenant, "/api-keys", key_body)
    bearer = {"Authorization": f"Bearer {session['token']}", "X-Device-ID": device}
    return [
        Credential(
            f"service token for {whose}",
            "service",
            tenant,
            headers,
            frozenset({PLATFORM_ROLE}),
            owner,
        ),
        Credential(
            f"{whose}'s admin session", "session", tenant, bearer, frozenset({"admin"}), root
        ),
        Credential(
            f"{whose}'s API key (*)",
            "api_key",
            tenant,
            {"Authorization": f"Bearer {key['key']}"},
            frozenset({"service"}),
            owner,
        ),
    ]


async def fresh(
    client: httpx.AsyncClient, tenant: str, user: str, kinds: set[IdKind]
) -> dict[IdKind, str]:
    """Ids of ``tenant`` for a control: ``user``, and a new object of each of ``kinds`` that a
    request can use up (a session, an API key, a setting, a passkey challenge)."""
    ids: dict[IdKind, str] = {"tenant": tenant, "user": user}
    if "session" in kinds:
        body = {"tenant_id": tenant, "user_id": f"own-{_hex()}"}
        ids["session"] = (await _post(client, tenant, "/sessions/create", body))["session_id"]
    if "key" in kinds:
        key = {"name": "own", "service_account": "own", "scopes": ["settings:read"]}
        ids["key"] = (await _post(client, tenant, "/api-keys", key))["key_id"]
    if "setting" in kinds:
        ids["setting"] = f"own-{_hex()}"
        put = await client.put(
            f"/settings/{ids['setting']}", json={"value": 1}, headers=_platform(tenant)
        )
        _ok(put, "write a setting")
    if "challenge" in kinds:
        ids["challenge"] = (await _challenge(client, tenant, user))["challenge_id"]
    if "metadata" in kinds:
        body = {"metadata_type": "business", "content": {"title": f"own-{_hex()}"}}
        ids["metadata"] = (await _post(client, tenant, "/metadata/create", body))["id"]
    if "schema" in kinds:
        ids["schema"] = f"own-{_hex()}"
        await _post(client, tenant, f"/schemas/{ids['schema']}", {"schema": {"type": "object"}})
    if "alert_rule" in kinds:
        ids["alert_rule"] = f"own-{_hex()}"
        await _alert_rule(client, tenant, ids["alert_rule"], "x")
    if "receiver" in kinds:
        ids["receiver"] = f"own-{_hex()}"
        await _receiver(
            client, tenant, ids["receiver"], f"https://hooks.slack.com/services/{_hex()}"
        )
    if "fixture" in kinds:
        ids["fixture"] = await _fixture(client, tenant, f"own-{_hex()}", "own")
    if "silence" in kinds:
        ids["silence"] = await _silence(client, tenant, f"own-{_hex()}", "own")
    if "model" in kinds or "job" in kinds:
        ids["model"] = f"own-{_hex()}"
        ids["job"] = await _trained(client, tenant, ids["model"], "own")
    if "workflow" in kinds:
        ids["workflow"] = await _workflow(client, tenant, f"own-{_hex()}")
    return ids


async def _trained(client: httpx.AsyncClient, tenant: str, name: str, source: str) -> str:
    """A model ``name`` of ``tenant`` (3 features) trained from ``source`` and promoted; the id
    of its finished training job."""
    rows = [[float(i % 4), float(i % 3), float(i % 5)] for i in range(40)]
    data = {"features": rows, "target": [a + b * c for a, b, c in rows], "source": source}
    body = {"name": name, "training_data": data, "parameters": {"max_iter": 10}}
    job = await _post(client, tenant, "/ai/models/performance_predictor/train", body)
    for _ in range(200):
        got = _ok(await client.get(f"/ai/jobs/{job['id']}", headers=_platform(tenant)), "a job")
        if got["status"] in ("succeeded", "failed"):
            break
        await asyncio.sleep(0.05)
    if got["status"] != "succeeded":
        raise AssertionError(f"training failed: {got}")
    await _post(client, tenant, f"/ai/models/{name}/promote", {})
    return str(job["id"])


async def _workflow(client: httpx.AsyncClient, tenant: str, title: str) -> str:
    """A ``release_track`` workflow of ``tenant`` whose first step fails (injected) and that is
    parked for an operator (``manual``), waited for until it is (so that nothing changes in the
    background after the world is made, and it can be cancelled, resumed, compensated); its
    id."""
    body = {
        "definition": "release_track",
        "input": {
            "title": title,
            "artists": ["Ada"],
            "release_date": "2027-01-01",
            "country": "DE",
            "registrant": "TNT",
            "stores": ["spotify"],
            "fail_at": "validate_metadata",
            "fail_times": 100,
        },
        "compensation_strategy": "manual",
    }
    made = await _post(client, tenant, "/workflows", body)
    workflow = str(made["id"])
    for _ in range(400):
        got = _ok(await client.get(f"/workflows/{workflow}", headers=_platform(tenant)), "read")
        if got["status"] == "parked":
            return workflow
        await asyncio.sleep(0.025)
    raise AssertionError(f"workflow {workflow} was not parked: {got}")


async def _silence(client: httpx.AsyncClient, tenant: str, alertname: str, comment: str) -> str:
    """A silence of ``tenant`` muting ``alertname`` for an hour; its id."""
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"matchers": [f'alertname="{alertname}"'], "ends_at": ends, "comment": comment}
    created: dict[str, Any] = await _post(client, tenant, "/alerts/silences", body)
    return str(created["id"])


async def _receiver(client: httpx.AsyncClient, tenant: str, name: str, url: str) -> None:
    """Give ``tenant`` an alert receiver ``name``: an incoming webhook at ``url``."""
    body = {"kind": "webhook", "secret": url}
    put = await client.put(f"/alerts/receivers/{name}", json=body, headers=_platform(tenant))
    _ok(put, "set an alert receiver")


async def _fixture(client: httpx.AsyncClient, tenant: str, name: str, title: str) -> str:
    """A Slack alert template (fixture) of ``tenant`` titled ``title``; its id."""
    texts = {"title": title, "description": "{{ severity | urgency_emoji }} failures"}
    body = {"name": name, "severity": "critical", "locales": {"de-DE": texts, "en": texts}}
    created: dict[str, Any] = await _post(client, tenant, f"/fixtures/{tenant}", body)
    return str(created["id"])


async def _alert_rule(client: httpx.AsyncClient, tenant: str, name: str, metric: str) -> None:
    """Set ``tenant``'s alert rules to one rule, ``name``, on the series ``metric``."""
    rules = f"alerts:\n  - name: {name}\n    condition: {metric} > 1\n    severity: info\n"
    put = await client.put("/alerts/rules", json={"rules": rules}, headers=_platform(tenant))
    _ok(put, "set the alert rules")


class Watch:
    """The state of a tenant an attack must leave as it is, read with the service token:
    settings, roles and sessions of its users, API keys, status, and the audit tree's size, which
    stands for every audited change (invariant 7), whatever the route that made it."""

    def __init__(self, data: TenantData) -> None:
        self.data = data
        self.last: dict[str, Any] = {}

    async def read(self, client: httpx.AsyncClient) -> dict[str, Any]:
        headers = _platform(self.data.tenant)

        async def get(path: str) -> Any:
            return _ok(await client.get(path, headers=headers), f"read {path}")

        tenant = _ok(
            await client.get(f"/tenants/{self.data.tenant}", headers=TOKEN), "read the tenant"
        )
        users = self.data.users
        return {
            "status": tenant["status"],
            "settings": {s["key"]: s["value"] for s in await get("/settings")},
            "roles": {u: (await get(f"/roles/{u}"))["roles"] for u in users},
            "sessions": {
                u: sorted(
                    (s["session_id"], s["revoked_at"] or "")
                    for s in await get(f"/users/{u}/sessions")
                )
                for u in users
            },
            "api_keys": sorted(
                (k["key_id"], k["revoked_at"] or "", k["scopes"]) for k in await get("/api-keys")
            ),
            "metadata": sorted(
                (r["id"], r["version"], json.dumps(r["content"], sort_keys=True))
                for r in (await get("/metadata?limit=100"))["items"]
            ),
            "schemas": sorted(
                (s["name"], s["latest"], s["compatibility"]) for s in await get("/schemas")
            ),
            "alert_rules": sorted(
                (r["name"], r["condition"], r["severity"]) for r in await get("/alerts/rules")
            ),
            "receivers": sorted(
                (r["name"], r["kind"], r["channel"] or "") for r in await get("/alerts/receivers")
            ),
            "silences": sorted(
                (s["id"], s["ends_at"], s["comment"], s["matchers"][0])
                for s in await get("/alerts/silences")
            ),
            "fixtures": sorted(
                (f["id"], f["name"], f["updated_at"], json.dumps(f["locales"], sort_keys=True))
                for f in await get(f"/fixtures/{self.data.tenant}")
            ),
            "models": sorted(
                (m["name"], json.dumps(m["aliases"], sort_keys=True), len(m["versions"]))
                for m in await get("/ai/models")
            ),
            "workflows": sorted(
                (w["id"], w["status"], w["updated_at"]) for w in await get("/workflows")
            ),
            "audit_size": (await get("/audit/entries?limit=1"))["tree_size"],
        }

    async def start(self, client: httpx.AsyncClient) -> None:
        self.last = await self.read(client)

    async def changes(self, client: httpx.AsyncClient) -> dict[str, Any]:
        """What changed since the last read ({} for nothing), before and after."""
        now = await self.read(client)
        changed = {
            k: {"before": self.last.get(k), "after": v}
            for k, v in now.items()
            if self.last.get(k) != v
        }
        self.last = now
        return changed
