"""A labelled data set of sessions, with account takeovers injected into normal traffic.

:func:`generate` simulates, per tenant, users with habits: working hours in their timezone (some
are night owls), one to three devices each with its user agent, a home /24 or two under their
ISP's /16 and a mobile carrier /16 (a new /24 per phone session, as carrier NAT does), and a
request rate around their tenant's (a tenant is either a small artist team or a label whose
staff run catalogue tools at ten times the rate). Normal sessions carry benign noise: travel
(a never-seen /16 a few hours off), a new phone, late nights, a switch from wifi to the carrier
mid-session, a failed validation or two (an expired token).

A share ``attack_rate`` of sessions (never a user's first two) is replaced by one of
:data:`ATTACKS`:

- ``credential_stuffing``: a burst of 8-40 failed validations seconds apart from rotating
  botnet addresses with a script's user agent, sometimes ending in a success;
- ``token_replay``: a stolen token used from a never-seen /16 at the user's night hours, half
  the time with the victim's user agent and device id copied;
- ``impossible_travel``: the user's session, and from its middle on, interleaved activity from a
  never-seen /16 with the same headers;
- ``scraping``: the user's own address and device, at 15-50 times the user's request rate;
- ``device_switch``: the user's session continued mid-way by another device and user agent.

Every session comes with the user's history (their earlier activity, the last
``HISTORY_LIMIT`` activities, attacks included: nobody labels production traffic).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tenantry.sessions.behaviour import Activity

__all__ = ["ATTACKS", "HISTORY_LIMIT", "LabelledSession", "generate", "split_by_time"]

ATTACKS = ("credential_stuffing", "token_replay", "impossible_travel", "scraping", "device_switch")
HISTORY_LIMIT = 300
_EPOCH = datetime(2026, 1, 5, tzinfo=UTC)
_BROWSERS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_{v}) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/13{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:13{v}.0) Gecko/20100101 Firefox/13{v}.0",
)
_PHONES = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_{v} like Mac OS X) Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel {v}) Chrome/13{v}.0.0.0 Mobile Safari/537.36",
)
_SCRIPTS = ("python-requests/2.32.{v}", "curl/8.{v}.0", "Go-http-client/1.1", "okhttp/4.12.{v}")


@dataclass(frozen=True, slots=True)
class LabelledSession:
    """A session's activity, its user's earlier activity, and whether it is an attack."""

    tenant_id: str
    user_id: str
    seq: int  # the session's rank in its user's timeline
    activities: tuple[Activity, ...]
    history: tuple[Activity, ...]
    label: bool
    attack: str | None = None


@dataclass(slots=True)
class _Device:
    device_id: str
    user_agent: str
    phone: bool


@dataclass(slots=True)
class _User:
    user_id: str
    tz: float
    start_hour: float
    day_hours: float
    rate: float
    homes: list[str]  # /24 prefixes "a.b.c"
    carrier: str  # /16 prefix "a.b"
    devices: list[_Device] = field(default_factory=list)


def _net16(rng: random.Random) -> str:
    return f"{rng.randint(11, 223)}.{rng.randint(0, 255)}"


def _ip(prefix: str, rng: random.Random) -> str:
    while prefix.count(".") < 3:
        prefix += f".{rng.randint(1, 254)}"
    return prefix


def _device(rng: random.Random, *, phone: bool) -> _Device:
    ua = rng.choice(_PHONES if phone else _BROWSERS).format(v=rng.randint(0, 9))
    return _Device(f"d-{rng.getrandbits(48):012x}", ua, phone)


def _user(rng: random.Random, tenant_id: str, n: int, tz: float, rate: float) -> _User:
    isp = [_net16(rng) for _ in range(2)]
    owl = rng.random() < 0.15
    user = _User(
        user_id=f"{tenant_id}-u{n}",
        tz=tz + rng.choice((0, 0, 0, -1, 1)),
        start_hour=rng.gauss(20, 1.5) if owl else rng.gauss(9, 1.2),
        day_hours=rng.uniform(5, 10),
        rate=rate * rng.lognormvariate(0, 0.4),
        homes=[f"{rng.choice(isp)}.{rng.randint(0, 255)}" for _ in range(rng.randint(1, 2))],
        carrier=_net16(rng),
    )
    user.devices = [
        _device(rng, phone=i > 0 and rng.random() < 0.7) for i in range(rng.choice((1, 2, 2, 3)))
    ]
    return user


def _walk(
    rng: random.Random,
    start: datetime,
    plan: tuple[int, float, float],
    ips: Sequence[str],
    device: _Device,
    *,
    kind: str = "validate",
) -> list[Activity]:
    """``count`` activities from ``start``, exponential gaps, requests ~ rate x gap."""
    (count, gap_min, rate), acts, at = plan, [], start
    for i in range(count):
        gap = rng.expovariate(1 / gap_min)
        at += timedelta(minutes=gap)
        requests = max(1, round(rng.gauss(rate * gap, (rate * gap) ** 0.5 + 0.5)))
        acts.append(
            Activity(at, kind, ips[i % len(ips)], device.user_agent, device.device_id, requests)
        )
    return acts


def _normal(rng: random.Random, user: _User, day: int) -> list[Activity]:
    """A normal session of ``user`` on ``day``, with benign noise now and then."""
    hour = user.start_hour + rng.uniform(0, user.day_hours)
    if rng.random() < 0.05:  # a late night
        hour = rng.uniform(23, 28)
    device = rng.choice(user.devices)
    if rng.random() < 0.02:  # a new phone, kept from now on
        device = _device(rng, phone=True)
        user.devices.append(device)
    if device.phone and rng.random() < 0.6:
        ip = _ip(f"{user.carrier}.{rng.randint(0, 255)}", rng)
    else:
        ip = _ip(rng.choice(user.homes), rng) if rng.random() < 0.2 else user.homes[0] + ".10"
    tz = user.tz
    if rng.random() < 0.04:  # travelling: a new /16, another timezone
        ip, tz = _ip(_net16(rng), rng), tz + rng.choice((-6, -3, 3, 6, 9))
    start = _EPOCH + timedelta(days=day, hours=hour - tz)
    count = 2 + min(int(rng.expovariate(1 / 10)), 60)
    acts = [Activity(start, "create", ip, device.user_agent, device.device_id, 1)]
    acts += _walk(rng, start, (count, rng.uniform(1, 3), user.rate), [ip], device)
    if rng.random() < 0.05 and len(acts) > 4:  # wifi -> carrier mid-session
        cut, cell = len(acts) // 2, _ip(f"{user.carrier}.{rng.randint(0, 255)}", rng)
        acts[cut:] = [
            Activity(a.at, a.kind, cell, a.user_agent, a.device_id, a.requests) for a in acts[cut:]
        ]
    for i in range(len(acts)):
        if rng.random() < 0.03:  # an expired token tried again, or a refresh
            a = acts[i]
            kind = "failed_validation" if rng.random() < 0.4 else "refresh"
            acts[i] = Activity(a.at, kind if i else a.kind, a.ip, a.user_agent, a.device_id, 1)
    return acts


def _attack(rng: random.Random, kind: str, user: _User, day: int) -> list[Activity]:
    base = _normal(rng, user, day)
    start = base[0].at
    thief = _device(rng, phone=rng.random() < 0.3)
    if kind == "credential_stuffing":
        bot = _Device("", rng.choice(_SCRIPTS).format(v=rng.randint(0, 9)), phone=False)
        ips = [_ip(_net16(rng), rng) for _ in range(rng.randint(1, 6))]
        acts = _walk(
            rng, start, (rng.randint(8, 40), 0.05, 0.0), ips, bot, kind="failed_validation"
        )
        if rng.random() < 0.5:
            acts += _walk(rng, acts[-1].at, (rng.randint(1, 5), 0.5, 5.0), ips[-1:], bot)
        return [Activity(a.at, a.kind, a.ip, a.user_agent, None, a.requests) for a in acts]
    if kind == "token_replay":
        night = user.start_hour + user.day_hours + rng.uniform(3, 8)
        at = _EPOCH + timedelta(days=day, hours=night - user.tz)
        if rng.random() < 0.5:
            thief = rng.choice(user.devices)
        ip = _ip(_net16(rng), rng)
        return _walk(rng, at, (rng.randint(4, 30), rng.uniform(0.5, 3), user.rate * 2), [ip], thief)
    cut = max(2, len(base) // 2)
    if kind == "impossible_travel":
        far = _ip(_net16(rng), rng)
        tail = base[cut:] or base[-1:]
        mixed = [
            Activity(
                a.at + timedelta(seconds=30), a.kind, far, a.user_agent, a.device_id, a.requests
            )
            for a in tail
        ]
        return sorted(base + mixed, key=lambda a: a.at)
    if kind == "scraping":
        device = _Device(base[0].device_id or "", base[0].user_agent or "", phone=False)
        rate = user.rate * rng.uniform(15, 50)
        return base[:1] + _walk(
            rng, start, (rng.randint(15, 60), 1.0, rate), [base[0].ip or ""], device
        )
    where = base[-1].ip or "" if rng.random() < 0.5 else _ip(_net16(rng), rng)  # device_switch
    plan = (rng.randint(3, 15), 1.5, user.rate)
    tail = _walk(rng, base[min(cut, len(base)) - 1].at, plan, [where], thief)
    return base[:cut] + tail


def generate(
    seed: int,
    tenants: int = 4,
    users_per_tenant: int = 25,
    sessions_per_user: int = 24,
    attack_rate: float = 0.05,
) -> list[LabelledSession]:
    """The labelled sessions, per tenant and user in time order; deterministic given ``seed``."""
    rng = random.Random(seed)
    out: list[LabelledSession] = []
    for t in range(tenants):
        tenant_id = f"tenant-{t}"
        tz = rng.choice((-8, -5, 0, 1, 2, 9))
        rate = rng.uniform(1, 3) * (10 if rng.random() < 0.4 else 1)  # a label runs tools
        for u in range(users_per_tenant):
            user = _user(rng, tenant_id, u, tz, rate)
            past: list[Activity] = []
            day = 0
            for seq in range(sessions_per_user):
                day += rng.choice((0, 1, 1, 1, 2, 3))
                attack = rng.choice(ATTACKS) if seq >= 2 and rng.random() < attack_rate else None
                acts = _attack(rng, attack, user, day) if attack else _normal(rng, user, day)
                out.append(
                    LabelledSession(
                        tenant_id,
                        user.user_id,
                        seq,
                        tuple(acts),
                        tuple(past[-HISTORY_LIMIT:]),
                        attack is not None,
                        attack,
                    )
                )
                past.extend(acts)
    return out


def split_by_time(
    data: Sequence[LabelledSession], train_share: float
) -> tuple[list[LabelledSession], list[LabelledSession]]:
    """(earlier, later) sessions: each user's first ``train_share`` of sessions, and the rest."""
    last = max((s.seq for s in data), default=0) + 1
    cut = round(last * train_share)
    return [s for s in data if s.seq < cut], [s for s in data if s.seq >= cut]
