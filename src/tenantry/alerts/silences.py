"""SilenceManager: a tenant's silences as objects of their own, with expiry, as Alertmanager's
``/api/v2/silences`` keeps them.

A silence mutes the tenant's alerts that all its matchers match (Alertmanager's text form,
``severity="critical"``, ``service=~"api|web"``), from ``starts_at`` until (not including)
``ends_at``; its state follows from the clock: *pending* before it starts, *active*, then
*expired*. The notifier (:meth:`~tenantry.alerts.notify.AlertNotifier.enqueue`) queues no
message for an alert an active silence mutes, in addition to the ``silences`` of the tenant's
routing document.

As in Alertmanager: a silence has at least one matcher and not every matcher may match the empty
string (it would mute everything); ``ends_at`` is required, after ``starts_at`` and not in the
past; a ``starts_at`` in the past (or none) is now. Expiring one (``DELETE``) sets its
``ends_at`` to now (a pending one's ``starts_at`` too), and an expired silence stays readable
for :data:`SILENCE_RETENTION`, then is collected (at the tenant's next change of its silences;
reads no longer show it before that). Unlike Alertmanager, an update changes only ``ends_at``
and ``comment``, in place (its id kept); to change what a silence mutes or when it starts,
expire it and create another. An expired silence is not updated.

Bounds, so that one tenant's silences stay cheap for the notifier: :data:`MAX_TENANT_SILENCES`
live (pending or active) ones, :data:`MAX_KEPT_EXPIRED` expired ones kept (the oldest go first),
:data:`MAX_SILENCE_MATCHERS` matchers each, at most :data:`MAX_SILENCE_DURATION` long. Every
change, collection included, is audited in its transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.alerts.matchers import Matcher, matches_all, parse_matcher, parse_matchers_text
from tenantry.alerts.suppression import Silence
from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import Conflict, InvalidInput, NotFound

__all__ = [
    "MAX_KEPT_EXPIRED",
    "MAX_SILENCE_COMMENT",
    "MAX_SILENCE_DURATION",
    "MAX_SILENCE_MATCHERS",
    "MAX_TENANT_SILENCES",
    "SILENCE_RETENTION",
    "SilenceManager",
    "SilenceState",
    "SilenceView",
    "parse_silence_matchers",
    "stored_silences",
]

#: Live (pending or active) silences a tenant may have at once.
MAX_TENANT_SILENCES: Final = 1000
#: Expired silences kept per tenant within the retention; beyond it the oldest are collected.
MAX_KEPT_EXPIRED: Final = 1000
#: How long an expired silence stays readable.
SILENCE_RETENTION: Final = timedelta(days=5)
#: The longest a silence may last.
MAX_SILENCE_DURATION: Final = timedelta(days=365)
MAX_SILENCE_MATCHERS: Final = 32
MAX_SILENCE_COMMENT: Final = 1000
_MAX_MATCHER_TEXT: Final = 2048
_COLUMNS: Final = "id, matchers, starts_at, ends_at, created_by, comment, created_at, updated_at"


class SilenceState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"

    @classmethod
    def at(cls, starts_at: datetime, ends_at: datetime, now: datetime) -> SilenceState:
        if now >= ends_at:
            return cls.EXPIRED
        return cls.PENDING if now < starts_at else cls.ACTIVE


@dataclass(frozen=True, slots=True)
class SilenceView:
    """A silence as reads show it; ``state`` as of the read."""

    id: str
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime
    updated_at: datetime
    state: SilenceState

    def silence(self) -> Silence:
        """The :class:`~tenantry.alerts.suppression.Silence` that mutes what this one does."""
        return Silence(
            tuple(parse_matcher(m) for m in self.matchers),
            self.starts_at,
            self.ends_at,
            id=self.id,
            comment=self.comment,
        )


def _view(row: Sequence[Any], now: datetime) -> SilenceView:
    silence_id, matchers, starts_at, ends_at, created_by, comment, created_at, updated_at = row
    state = SilenceState.at(starts_at, ends_at, now)
    return SilenceView(
        str(silence_id), list(matchers), starts_at, ends_at, created_by, comment, created_at,
        updated_at, state,
    )  # fmt: skip


def _aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(f"{name} is a time with its zone (2026-12-06T09:00:00Z)")
    return value


def _comment(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_SILENCE_COMMENT:
        raise InvalidInput(f"comment is a string of at most {MAX_SILENCE_COMMENT:,} characters")
    return value


def parse_silence_matchers(texts: Sequence[str]) -> tuple[Matcher, ...]:
    """The matchers of ``texts``, each entry one matcher or several (``a="b", c=~"d"``)."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InvalidInput('matchers is a list of matchers (severity="critical")')
    found: list[Matcher] = []
    for entry in texts:
        if not isinstance(entry, str) or len(entry) > _MAX_MATCHER_TEXT:
            raise InvalidInput(f"a matcher is a string of at most {_MAX_MATCHER_TEXT} characters")
        found += parse_matchers_text(entry)
    if not found:
        raise InvalidInput("a silence needs at least one matcher")
    if len(found) > MAX_SILENCE_MATCHERS:
        raise InvalidInput(f"a silence has at most {MAX_SILENCE_MATCHERS} matchers")
    return tuple(found)


def _check_end(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if ends_at <= now:
        raise InvalidInput("ends_at must not be in the past (expire a silence with DELETE)")
    if ends_at <= starts_at:
        raise InvalidInput("ends_at must be after starts_at")
    if ends_at - starts_at > MAX_SILENCE_DURATION:
        raise InvalidInput(f"a silence lasts at most {MAX_SILENCE_DURATION.days} days")


def _uuid(silence_id: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(silence_id))
    except ValueError:
        raise NotFound(f"no silence {InvalidInput.excerpt(silence_id)}") from None


async def stored_silences(conn: AsyncConnection, since: datetime) -> list[Silence]:
    """The tenant's silences (in ``conn``'s transaction) that have not ended by ``since``,
    as :class:`~tenantry.alerts.suppression.Silence` (the notifier checks each alert's time)."""
    rows = await conn.execute(
        text(f"SELECT {_COLUMNS} FROM tenantry.alert_silences WHERE ends_at > :since"),
        {"since": since},
    )
    return [_view(row, since).silence() for row in rows]


class SilenceManager(RecordsChanges):
    """A tenant's silences; see the module docstring."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        audit: ChangeLog | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._database, self._audit, self._clock = database, audit, clock

    async def create(
        self,
        tenant_id: str,
        matchers: Sequence[str],
        *,
        ends_at: datetime,
        starts_at: datetime | None = None,
        comment: str = "",
        actor: str | None = None,
    ) -> SilenceView:
        """A new silence of ``tenant_id``; invalid input or a tenant at its bound of live
        silences (:class:`~tenantry.errors.Conflict`) changes nothing."""
        validate_tenant_id(tenant_id)
        now = self._clock()
        parsed = parse_silence_matchers(matchers)
        start = now if starts_at is None else max(_aware(starts_at, "starts_at"), now)
        end = _aware(ends_at, "ends_at")
        _check_end(start, end, now)
        Silence(parsed, start, end)  # at least one matcher that does not match ''
        texts = [str(m) for m in parsed]
        comment = _comment(comment)
        silence_id = uuid.uuid4()
        trail = await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext('tenantry.silences:' || :t))"),
                    {"t": tenant_id},
                )
                await self._collect(conn, trail, tenant_id, now)
                live = await conn.scalar(
                    text("SELECT count(*) FROM tenantry.alert_silences WHERE ends_at > :now"),
                    {"now": now},
                )
                if int(live or 0) >= MAX_TENANT_SILENCES:
                    raise Conflict(
                        f"a tenant has at most {MAX_TENANT_SILENCES:,} live silences: expire one"
                    )
                row = (
                    await conn.execute(
                        text(
                            "INSERT INTO tenantry.alert_silences (tenant_id, id, matchers, "
                            "starts_at, ends_at, created_by, comment, created_at, updated_at) "
                            "VALUES (:t, :id, :matchers, :starts_at, :ends_at, :by, :comment, "
                            f":now, :now) RETURNING {_COLUMNS}"
                        ),
                        {
                            "t": tenant_id,
                            "id": silence_id,
                            "matchers": texts,
                            "starts_at": start,
                            "ends_at": end,
                            "by": actor or "",
                            "comment": comment,
                            "now": now,
                        },
                    )
                ).one()
                await trail.record(
                    tenant_id, "alerts.silence.create", f"alert_silence:{silence_id}",
                    actor=actor, detail=_detail(texts, start, end),
                )  # fmt: skip
        return _view(row, now)

    async def silences(
        self,
        tenant_id: str,
        *,
        state: SilenceState | None = None,
        matchers: Sequence[str] = (),
    ) -> list[SilenceView]:
        """``tenant_id``'s silences (expired ones within the retention), those in ``state`` and
        matching every filter of ``matchers`` if given (a filter applies to each matcher's
        label and value, as Alertmanager's ``filter``): active ones by end, pending ones by
        start, then expired ones, the latest first."""
        validate_tenant_id(tenant_id)
        filters = parse_silence_matchers(matchers) if matchers else ()
        now = self._clock()
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                rows = await conn.execute(
                    text(f"SELECT {_COLUMNS} FROM tenantry.alert_silences WHERE ends_at > :kept"),
                    {"kept": now - SILENCE_RETENTION},
                )
                found = [_view(row, now) for row in rows]
        if state is not None:
            found = [s for s in found if s.state is state]
        if filters:
            found = [s for s in found if _matches(filters, s)]
        return sorted(found, key=_order)

    async def silence(self, tenant_id: str, silence_id: str) -> SilenceView:
        """One silence; :class:`~tenantry.errors.NotFound` if there is none (another tenant's
        included), or it was expired longer than the retention ago."""
        validate_tenant_id(tenant_id)
        key, now = _uuid(silence_id), self._clock()
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                return await _one(conn, key, now)

    async def update(
        self,
        tenant_id: str,
        silence_id: str,
        *,
        ends_at: datetime | None = None,
        comment: str | None = None,
        actor: str | None = None,
    ) -> SilenceView:
        """Change a pending or active silence's ``ends_at`` or ``comment``, in place;
        :class:`~tenantry.errors.Conflict` for an expired one (create another)."""
        validate_tenant_id(tenant_id)
        if ends_at is None and comment is None:
            raise InvalidInput("give ends_at or comment to change")
        key, now = _uuid(silence_id), self._clock()
        end = None if ends_at is None else _aware(ends_at, "ends_at")
        note = None if comment is None else _comment(comment)
        trail = await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                current = await _one(conn, key, now, lock=True)
                if current.state is SilenceState.EXPIRED:
                    raise Conflict("the silence has expired: create a new one")
                if end is not None:
                    _check_end(current.starts_at, end, now)
                changed = {k: v for k, v in (("ends_at", end), ("comment", note)) if v is not None}
                row = (
                    await conn.execute(
                        text(
                            "UPDATE tenantry.alert_silences SET ends_at = coalesce(:end, "
                            "ends_at), comment = coalesce(:comment, comment), updated_at = :now "
                            f"WHERE id = :id RETURNING {_COLUMNS}"
                        ),
                        {"end": end, "comment": note, "now": now, "id": key},
                    )
                ).one()
                await trail.record(
                    tenant_id, "alerts.silence.update", f"alert_silence:{key}", actor=actor,
                    detail={"changed": sorted(changed), **(
                        {"ends_at": end.isoformat()} if end is not None else {})},
                )  # fmt: skip
        return _view(row, now)

    async def expire(
        self, tenant_id: str, silence_id: str, *, actor: str | None = None
    ) -> SilenceView:
        """End a silence now (a pending one never starts); an expired one is left as it is.
        It stays readable for :data:`SILENCE_RETENTION`."""
        validate_tenant_id(tenant_id)
        key, now = _uuid(silence_id), self._clock()
        trail = await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                current = await _one(conn, key, now, lock=True)
                if current.state is SilenceState.EXPIRED:
                    return current
                row = (
                    await conn.execute(
                        text(
                            "UPDATE tenantry.alert_silences SET ends_at = :now, starts_at = "
                            "least(starts_at, :now), updated_at = :now WHERE id = :id "
                            f"RETURNING {_COLUMNS}"
                        ),
                        {"now": now, "id": key},
                    )
                ).one()
                await trail.record(
                    tenant_id, "alerts.silence.expire", f"alert_silence:{key}", actor=actor,
                    detail={"was": current.state.value},
                )  # fmt: skip
                await self._collect(conn, trail, tenant_id, now)
        return _view(row, now)

    async def _collect(
        self, conn: AsyncConnection, trail: ChangeLog, tenant_id: str, now: datetime
    ) -> None:
        """Delete the expired silences past the retention, and the oldest expired ones beyond
        :data:`MAX_KEPT_EXPIRED`; audited when there were any."""
        gone = (
            await conn.execute(
                text(
                    "DELETE FROM tenantry.alert_silences WHERE ends_at <= :kept OR "
                    "(tenant_id, id) IN (SELECT tenant_id, id FROM tenantry.alert_silences "
                    "WHERE ends_at <= :now "
                    "ORDER BY ends_at DESC, id OFFSET :keep) RETURNING id"
                ),
                {"kept": now - SILENCE_RETENTION, "now": now, "keep": MAX_KEPT_EXPIRED},
            )
        ).all()
        if gone:
            await trail.record(
                tenant_id, "alerts.silences.collect", "alert_silences",
                detail={"ids": sorted(str(i) for (i,) in gone)},
            )  # fmt: skip


async def _one(
    conn: AsyncConnection, key: uuid.UUID, now: datetime, *, lock: bool = False
) -> SilenceView:
    row = (
        await conn.execute(
            text(
                f"SELECT {_COLUMNS} FROM tenantry.alert_silences WHERE id = :id "
                f"AND ends_at > :kept{' FOR UPDATE' if lock else ''}"
            ),
            {"id": key, "kept": now - SILENCE_RETENTION},
        )
    ).first()
    if row is None:
        raise NotFound(f"no silence {key}")
    return _view(row, now)


def _matches(filters: Sequence[Matcher], silence: SilenceView) -> bool:
    """Alertmanager's ``filter`` of silences: each filter applied to the silence's matchers'
    labels and values (``{name: value}``)."""
    labels = {m.name: m.value for m in (parse_matcher(t) for t in silence.matchers)}
    return matches_all(filters, labels)


def _order(silence: SilenceView) -> tuple[int, float, str]:
    if silence.state is SilenceState.ACTIVE:
        return 0, silence.ends_at.timestamp(), silence.id
    if silence.state is SilenceState.PENDING:
        return 1, silence.starts_at.timestamp(), silence.id
    return 2, -silence.ends_at.timestamp(), silence.id


def _detail(matchers: list[str], starts_at: datetime, ends_at: datetime) -> dict[str, Any]:
    return {
        "matchers": matchers,
        "starts_at": starts_at.isoformat(),
        "ends_at": ends_at.isoformat(),
    }
