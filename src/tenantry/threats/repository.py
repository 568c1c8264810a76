"""The SQL of the threat analysis and the security events, in a tenant transaction (so RLS
applies); the analysis aggregates ``security_events`` without fetching the rows.

- :meth:`ThreatsRepository.window_aggregates`: per (user or IP, kind), the events in the window,
  the busiest ``bucket`` (fixed bins from the window's start), the worst recorded severity and
  the highest ``detail.score``. Each event counts for its user, for its IP, for ``tenant`` when
  it names neither, and for ``all`` (the per-kind totals). Aggregates below every threshold of
  their kind's rule are dropped in SQL, so Python sees only what can raise a level.
- :meth:`ThreatsRepository.baseline_counts`: per kind and previous window (``0`` = the one just
  before), the number of events, for the anomaly score; windows without events are absent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import insert, select, text
from sqlalchemy.engine import RowMapping

from tenantry.db.repository import DriverQuery, TenantRepository
from tenantry.threats.models import security_events
from tenantry.threats.schemas import ORDER

__all__ = [
    "NEVER",
    "BaselineCount",
    "SecurityEventsRepository",
    "SubjectAggregate",
    "ThreatsRepository",
    "Threshold",
]

_TABLE = security_events.fullname
#: A count no window reaches (the largest bigint).
NEVER = 2**63 - 1


_SEVERITY_RANK = " ".join(f"WHEN '{lvl.value}' THEN {n}" for n, lvl in enumerate(ORDER))

# Per subject: two hash aggregations over the window's rows. The first groups them per subject
# (a user, with the "names neither a user nor an IP" flag, so events without a user split into
# the tenant's own and the IP-only ones; or an IP), kind and ``bucket`` bin (date_bin from the
# window's start; one bin for kinds without a peak rule). The second folds the bins into the
# subject's total and peak; the user statement adds per-kind totals as a grouping set. The user
# and IP statements are independent, so the analyzer runs them on two connections at once.
# Keys are "C"-collated so that a sort-based plan (stale statistics) compares bytes, not locale
# strings.
_ROWS = f"""
            SELECT kind COLLATE "C" AS kind, principal_id COLLATE "C" AS principal_id,
                   ip COLLATE "C" AS ip, (principal_id IS NULL AND ip IS NULL) AS anon,
                   CASE WHEN kind = ANY(CAST(:burst_kinds AS text[]))
                        THEN date_bin(make_interval(secs => CAST(:bucket_seconds AS float8)),
                                      occurred_at, CAST(:start AS timestamptz)) END AS bin,
                   CASE severity {_SEVERITY_RANK} ELSE 0 END AS severity,
                   CASE WHEN kind = ANY(CAST(:score_kinds AS text[]))
                             AND jsonb_typeof(detail -> 'score') = 'number'
                        THEN (detail ->> 'score')::float8 END AS score
            FROM {_TABLE}
            WHERE occurred_at >= :start AND occurred_at < :end"""
_RULES = """
    LEFT JOIN unnest(CAST(:kinds AS text[]), CAST(:min_total AS bigint[]),
                     CAST(:min_peak AS bigint[]), CAST(:min_score AS float8[]))
         AS r (kind, min_total, min_peak, min_score) ON r.kind COLLATE "C" = a.kind"""
_REACHED = """WHEN r.kind IS NULL THEN a.severity > 0
               ELSE a.total >= r.min_total OR a.peak >= r.min_peak
                    OR coalesce(a.score >= r.min_score, false) END"""
_USER_SQL = DriverQuery.of(
    f"""
    WITH binned AS (
        SELECT kind, principal_id, anon,
               count(*) AS n, max(severity) AS severity, max(score) AS score
        FROM ({_ROWS}) AS e
        GROUP BY kind, principal_id, anon, bin
    ), agg AS (
        SELECT GROUPING(principal_id) = 1 AS per_kind, principal_id AS subject, anon, kind,
               sum(n)::bigint AS total, max(n)::bigint AS peak,
               max(severity) AS severity, max(score) AS score
        FROM binned
        GROUP BY GROUPING SETS ((principal_id, anon, kind), (kind))
    )
    SELECT a.per_kind, a.subject, a.anon, a.kind, a.total, a.peak, a.severity, a.score
    FROM agg AS a {_RULES}
    WHERE CASE WHEN a.per_kind THEN true
               WHEN a.subject IS NULL THEN a.anon
               {_REACHED}
    """
)
_IP_SQL = DriverQuery.of(
    f"""
    WITH binned AS (
        SELECT kind, ip, count(*) AS n, max(severity) AS severity, max(score) AS score
        FROM ({_ROWS} AND ip IS NOT NULL) AS e
        GROUP BY kind, ip, bin
    ), agg AS (
        SELECT false AS per_kind, ip AS subject, false AS anon, kind,
               sum(n)::bigint AS total, max(n)::bigint AS peak,
               max(severity) AS severity, max(score) AS score
        FROM binned
        GROUP BY ip, kind
    )
    SELECT a.per_kind, a.subject, a.anon, a.kind, a.total, a.peak, a.severity, a.score
    FROM agg AS a {_RULES}
    WHERE CASE {_REACHED}
    """
)

_BASELINE_SQL = text(
    f"""
    SELECT kind COLLATE "C" AS kind,
           floor(date_part('epoch', CAST(:start AS timestamptz) - occurred_at)
                 / CAST(:seconds AS float8))::int AS idx,
           count(*)::bigint AS n
    FROM {_TABLE}
    WHERE occurred_at >= :since AND occurred_at < :start
    GROUP BY 1, 2
    """
)


@dataclass(frozen=True, slots=True)
class SubjectAggregate:
    """One kind's events of one subject (``user``, ``ip``, ``tenant`` or ``all``): ``severity``
    is the worst recorded as a rank (0..3), ``score`` the highest numeric ``detail.score``."""

    subject_type: str
    subject: str
    kind: str
    total: int
    peak: int
    severity: int
    score: float | None


@dataclass(frozen=True, slots=True)
class Threshold:
    """The least total, bucket peak or score at which a kind's events can matter."""

    total: int = NEVER
    peak: int = NEVER
    score: float = float("inf")


@dataclass(frozen=True, slots=True)
class BaselineCount:
    """``count`` events of ``kind`` in the ``index``-th window before the analysed one."""

    kind: str
    index: int
    count: int


class ThreatsRepository(TenantRepository):
    """Aggregating reads of the current tenant's security events."""

    async def window_aggregates(
        self,
        start: datetime,
        end: datetime,
        *,
        bucket: timedelta,
        thresholds: Mapping[str, Threshold] | None = None,
        by: Literal["user", "ip"] = "user",
    ) -> Sequence[SubjectAggregate]:
        """Per subject and kind: totals and the peak bucket of ``[start, end)``.

        ``by="user"``: the users, the tenant's own events (naming neither a user nor an IP) and
        the per-kind totals (``all``); ``by="ip"``: the IPs. Only the aggregates that reach their
        kind's :class:`Threshold` come back (kinds without one: those with a recorded severity
        above low), besides the tenant's and the totals. Events are binned only for kinds with a
        peak threshold; for the others ``peak`` is ``total``. ``score`` is read only for kinds
        with a score threshold (no other rule looks at it).
        """
        limits = thresholds or {}
        params = {
            "start": start,
            "end": end,
            "bucket_seconds": bucket.total_seconds(),
            "kinds": list(limits),
            "min_total": [t.total for t in limits.values()],
            "min_peak": [t.peak for t in limits.values()],
            "min_score": [t.score for t in limits.values()],
            "burst_kinds": [kind for kind, t in limits.items() if t.peak < NEVER],
            "score_kinds": [kind for kind, t in limits.items() if t.score < float("inf")],
        }
        out: list[SubjectAggregate] = []
        rows = await self.fetch_driver(_USER_SQL if by == "user" else _IP_SQL, params)
        for per_kind, named, _, kind, total, peak, severity, score in rows:
            if per_kind:
                stype, subject = "all", ""
            elif by == "ip":
                stype, subject = "ip", named
            elif named is None:  # events naming neither a user nor an IP
                stype, subject = "tenant", ""
            else:
                stype, subject = "user", named
            out.append(
                SubjectAggregate(
                    stype, subject, kind, total, total if per_kind else peak, severity, score
                )
            )
        return out

    async def baseline_counts(
        self, start: datetime, window: timedelta, windows: int
    ) -> Sequence[BaselineCount]:
        """Per kind, the event count of each of the ``windows`` windows before ``start``."""
        result = await self.conn.execute(
            _BASELINE_SQL,
            {
                "start": start,
                "since": start - window * windows,
                "seconds": window.total_seconds(),
            },
        )
        return [BaselineCount(str(r.kind), int(r.idx), int(r.n)) for r in result]


class SecurityEventsRepository(TenantRepository):
    async def add(self, **values: Any) -> RowMapping:
        statement = (
            insert(security_events)
            .values(tenant_id=self.tenant_id, **values)
            .returning(*security_events.c)
        )
        return (await self.conn.execute(statement)).mappings().one()

    async def since(
        self, since: datetime, *, kinds: Sequence[str] = (), limit: int = 10_000
    ) -> Sequence[RowMapping]:
        query = (
            select(security_events)
            .where(security_events.c.occurred_at >= since)
            .order_by(security_events.c.occurred_at.desc())
            .limit(limit)
        )
        if kinds:
            query = query.where(security_events.c.kind.in_(kinds))
        return (await self.conn.execute(query)).mappings().all()
