"""Threat analysis: a tenant's security events, scored into threat levels per user, IP and tenant.

The database aggregates the window (``repository.py``: counts per subject and kind, the
busiest ``burst_bucket``, worst severity, highest anomaly score); Python applies the
:class:`Rule` objects to each subject, and compares each kind's count with the tenant's own
baseline (the ``baseline_windows`` windows of the same length before it, cached for 1/60 of a
window: ``baseline.py``) with a robust z-score (median and MAD): a kind far above its usual
rate is a ``burst`` signal of the tenant. Those counts make the report's ``anomaly_score``, unless
the tenant's AI registry holds a champion detector of windows (``detector.py``): no model is fitted
or kept here.

Only MEDIUM and above are signals, so a report lists the subjects that need a look (users and
IPs missing from it are LOW; the SQL drops aggregates below every threshold of their rule).
A subject at HIGH or above becomes a :class:`Threat` passed to every ``on_threat`` callback.
Deduplication is in memory, per analyzer and process: the same (tenant, subject, level) is
raised again only once a window has passed; a higher level is raised at once.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tenantry.context import tenant_scope
from tenantry.db.default import UsesDatabase
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput
from tenantry.logging import get_logger
from tenantry.threats.baseline import BaselineCache, History, anchor
from tenantry.threats.baseline import history as baseline_history
from tenantry.threats.detector import WindowDetector
from tenantry.threats.repository import (
    NEVER,
    BaselineCount,
    SubjectAggregate,
    ThreatsRepository,
    Threshold,
)
from tenantry.threats.schemas import (
    ORDER,
    Burst,
    Signal,
    SubjectThreat,
    SubjectType,
    ThreatLevel,
    ThreatReport,
)
from tenantry.tracing import traced

__all__ = [
    "DEFAULT_RULES",
    "MAX_WINDOW",
    "Burst",
    "Rule",
    "Signal",
    "SubjectThreat",
    "Threat",
    "ThreatAnalyzer",
    "ThreatCallback",
    "ThreatLevel",
    "ThreatReport",
]

_log = get_logger(__name__)
MAX_WINDOW = timedelta(days=7)
#: Windows :meth:`ThreatAnalyzer.training_windows` gives at most (a year of hours).
MAX_TRAINING_WINDOWS = 24 * 366


L, M, H, C = ORDER


@dataclass(frozen=True, slots=True)
class Rule:
    """How events of ``kind`` raise one subject's level; the highest level reached wins.

    ``counts``: (at least this many in the window, level), for rare kinds where one event says
    something; ``peaks``: (at least this many in one ``burst_bucket``, level), a rate, for the
    noisy kinds (a busy user fails a few logins an hour; ten in five minutes is an attack);
    ``scores``: (highest ``detail.score`` at least, level).
    """

    kind: str
    reason: str
    counts: tuple[tuple[int, ThreatLevel], ...] = ()
    peaks: tuple[tuple[int, ThreatLevel], ...] = ()
    scores: tuple[tuple[float, ThreatLevel], ...] = ()

    def level(self, agg: SubjectAggregate) -> ThreatLevel | None:
        """The level this rule gives the aggregate, or ``None`` when it does not match."""
        rank = self.rank(agg)
        return ORDER[rank] if rank >= 0 else None

    def rank(self, agg: SubjectAggregate) -> int:
        """:meth:`level` as a rank (0 LOW .. 3 CRITICAL), -1 when the rule does not match."""
        best = -1
        for n, lvl in self.counts:
            if agg.total >= n:
                best = max(best, lvl.rank)
        for n, lvl in self.peaks:
            if agg.peak >= n:
                best = max(best, lvl.rank)
        if agg.score is not None:
            for s, lvl in self.scores:
                if agg.score >= s:
                    best = max(best, lvl.rank)
        return best

    def threshold(self) -> Threshold:
        """The least count, peak and score at which this rule gives more than LOW."""
        return Threshold(
            total=min((n for n, lvl in self.counts if lvl > L), default=NEVER),
            peak=min((n for n, lvl in self.peaks if lvl > L), default=NEVER),
            score=min((s for s, lvl in self.scores if lvl > L), default=float("inf")),
        )


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("failed_validation", "failed validations", peaks=((5, M), (10, H))),
    Rule("foreign_tenant_probe", "probes of another tenant's ids", ((1, M), (5, H))),
    Rule("revoked_token_use", "use of a revoked token", ((1, M), (3, H))),
    Rule("passkey_counter_regression", "passkey signature counter went back", ((1, C),)),
    Rule("device_mismatch", "session used from another device", ((1, H),)),
    Rule("anomaly", "anomalous behaviour", ((1, M), (3, H)), scores=((0.9, H),)),
    Rule("new_device", "new device or country", peaks=((3, M),)),
    Rule("step_up_failed", "failed passkey step-ups", peaks=((3, M), (10, H))),
    Rule("session_limit", "session limit reached", peaks=((5, M),)),
)


@dataclass(frozen=True, slots=True)
class Threat:
    """A subject at HIGH or above, handed to the ``on_threat`` callbacks."""

    tenant_id: str
    subject_type: SubjectType
    subject: str
    level: ThreatLevel
    reasons: tuple[str, ...]
    window_start: datetime
    window_end: datetime


ThreatCallback = Callable[[Threat], Awaitable[None]]


class ThreatAnalyzer(UsesDatabase):
    """Scores a tenant's security events into threat levels; raises HIGH+ to callbacks."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        on_threat: list[ThreatCallback] | None = None,
        rules: Sequence[Rule] | None = None,
        burst_bucket: timedelta = timedelta(minutes=5),
        baseline_windows: int = 24,
        burst_z: tuple[float, float] = (4.0, 8.0),
        burst_min_count: int = 20,
        detector: WindowDetector | None = None,
    ) -> None:
        self._database = database
        self.on_threat: list[ThreatCallback] = list(on_threat or [])
        self.rules = {rule.kind: rule for rule in (DEFAULT_RULES if rules is None else rules)}
        self._thresholds = {kind: rule.threshold() for kind, rule in self.rules.items()}
        self.burst_bucket = burst_bucket
        self.baseline_windows = baseline_windows
        self.burst_z = burst_z
        self.burst_min_count = burst_min_count
        self._raised: dict[tuple[str, str, str, ThreatLevel], datetime] = {}
        self.baselines = BaselineCache()
        #: Each tenant's registry detector, when the app gives the AI manager (``detector.py``).
        self.detector = detector

    @traced("threats.analyze")
    async def analyze(
        self,
        tenant_id: str,
        window: timedelta = timedelta(hours=1),
        *,
        now: datetime | None = None,
        fresh: bool = False,
    ) -> ThreatReport:
        """The tenant's threat report for the ``window`` ending at ``now`` (default: now).

        Its reads may go to a read replica (when the database is routed through one), so events
        committed in the last moments may be missing; ``fresh`` reads the primary, which has
        every event committed before the call (the watch does, since it analyses a tenant once
        per burst of events)."""
        if not isinstance(window, timedelta) or not timedelta(0) < window <= MAX_WINDOW:
            raise InvalidInput(f"the window must be more than 0 and at most {MAX_WINDOW}")
        end = datetime.now(UTC) if now is None else now
        if end.tzinfo is None:
            raise InvalidInput("now must be timezone-aware")
        start = end - window
        db = await self._db()
        reading = db.tenant_transaction if fresh else db.tenant_read_transaction

        async def window_aggregates(by: Literal["user", "ip"]) -> Sequence[SubjectAggregate]:
            with tenant_scope(tenant_id):
                async with reading() as conn:
                    return await ThreatsRepository(conn).window_aggregates(
                        start, end, bucket=self.burst_bucket, thresholds=self._thresholds, by=by
                    )

        async def baseline_counts() -> Sequence[BaselineCount]:
            with tenant_scope(tenant_id):
                async with reading() as conn:
                    return await ThreatsRepository(conn).baseline_counts(
                        at, window, self.baseline_windows
                    )

        # The users', the IPs' and (unless kept) the baseline's statements do not wait on each
        # other: each on a connection of its own, at the same time (all read committed data).
        at = anchor(start, window)
        history = self.baselines.get(tenant_id, window, at)
        if history is not None:
            users, ips = await asyncio.gather(window_aggregates("user"), window_aggregates("ip"))
        else:
            users, ips, counts = await asyncio.gather(
                window_aggregates("user"), window_aggregates("ip"), baseline_counts()
            )
            history = baseline_history(counts, self.baseline_windows)
            self.baselines.put(tenant_id, window, at, history)
        aggregates = [*users, *ips]
        report = self.score(tenant_id, start, end, aggregates, history)
        if self.detector is not None:
            scored = await self.detector.score(tenant_id, tuple(self.rules), report.counts)
            if scored is not None:
                score, flagged, version = scored
                report = report.model_copy(
                    update={"anomaly_score": score, "anomaly_method": "model",
                            "anomaly_model_version": version, "model_anomaly": flagged}
                )  # fmt: skip
        await self._raise(report, window)
        return report

    async def training_windows(
        self, tenant_id: str, window: timedelta = timedelta(hours=1), windows: int = 24 * 14,
        *, now: datetime | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Training data for the tenant's detector (``detector.py``): the feature vector of each
        of the ``windows`` windows of ``window`` before ``now``, as ``train_model`` takes it."""
        if not isinstance(window, timedelta) or not timedelta(0) < window <= MAX_WINDOW:
            raise InvalidInput(f"the window must be more than 0 and at most {MAX_WINDOW}")
        if not 1 <= windows <= MAX_TRAINING_WINDOWS:
            raise InvalidInput(f"windows is 1 to {MAX_TRAINING_WINDOWS}")
        end = datetime.now(UTC) if now is None else now
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_read_transaction() as conn:
                counts = await ThreatsRepository(conn).baseline_counts(end, window, windows)
        past = baseline_history(counts, windows)
        kinds = tuple(self.rules)
        rows = [[float(past.get(k, [0] * windows)[i]) for k in kinds] for i in range(windows)]
        return {
            "features": rows[::-1],  # oldest first
            "feature_names": list(kinds),
            "source": "security_events",
            "rows": f"{windows} windows of {window}",
            "start": end - window * windows,
            "end": end,
        }

    analyze_threats = analyze

    def score(
        self,
        tenant_id: str,
        start: datetime,
        end: datetime,
        aggregates: Sequence[SubjectAggregate],
        history: History,
    ) -> ThreatReport:
        """The report of ``aggregates`` (see ``repository.py``) and per-kind ``history``."""
        counts: dict[str, int] = {}
        signals: dict[tuple[str, str], list[Signal]] = defaultdict(list)
        subject_counts: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        rules = self.rules
        for agg in aggregates:
            if agg.subject_type == "all":
                counts[agg.kind] = agg.total
                continue
            key = (agg.subject_type, agg.subject)
            subject_counts[key][agg.kind] = agg.total
            rule = rules.get(agg.kind)
            rank = rule.rank(agg) if rule is not None else -1
            if rank < 0 and agg.severity > 0:  # no rule matched: trust the recorded severity
                rank = min(agg.severity, 3)
            if rank > 0:  # LOW is the default: no signal
                reason = rule.reason if rule is not None else agg.kind
                text = f"{agg.total} x {agg.kind}: {reason} (peak {agg.peak} per bucket)"
                signals[key].append(Signal(agg.kind, ORDER[rank], agg.total, text))
        bursts, anomaly = self._bursts(counts, history)
        for burst in bursts:
            usual = f"usual {burst.baseline_median:g}, z={burst.z_score:.1f}"
            text = f"{burst.count} x {burst.kind} in the window ({usual})"
            signals[("tenant", "")].append(Signal("burst", burst.level, burst.count, text))
            subject_counts[("tenant", "")].setdefault(burst.kind, 0)
        subjects = [self._subject(key, signals[key], subject_counts[key]) for key in signals]
        subjects.sort(key=lambda s: (-s.level.rank, s.subject_type, s.subject))
        return ThreatReport.model_construct(  # built from trusted values: no validation pass
            tenant_id=tenant_id,
            window_start=start,
            window_end=end,
            level=ORDER[max((s.level.rank for s in subjects), default=0)],
            anomaly_score=anomaly,
            total_events=sum(counts.values()),
            counts=counts,
            users={s.subject: s.level for s in subjects if s.subject_type == "user"},
            ips={s.subject: s.level for s in subjects if s.subject_type == "ip"},
            subjects=subjects,
            bursts=bursts,
        )

    @staticmethod
    def _subject(
        key: tuple[str, str], signals: list[Signal], counts: dict[str, int]
    ) -> SubjectThreat:
        ranks = [s.level.rank for s in signals]
        rank = max(ranks)
        if rank < 3 and sum(1 for r in ranks if r >= 2) >= 2:  # two kinds of attack: CRITICAL
            rank = 3
        stype: SubjectType = "user" if key[0] == "user" else "ip" if key[0] == "ip" else "tenant"
        ordered = sorted(signals, key=lambda s: -s.level.rank)
        return SubjectThreat(stype, key[1], ORDER[rank], ordered, counts)

    def _bursts(self, counts: dict[str, int], history: History) -> tuple[list[Burst], float]:
        """Kinds far above their baseline, and the tenant's anomaly score in [0, 1]."""
        bursts: list[Burst] = []
        top = 0.0
        for kind, count in sorted(counts.items()):
            past = history.get(kind, [0] * self.baseline_windows)
            median = statistics.median(past) if past else 0.0
            mad = statistics.median(abs(x - median) for x in past) if past else 0.0
            # MAD floor: a quiet baseline (all zeros) must not turn 3 events into z = inf.
            scale = max(1.4826 * mad, median**0.5, 1.0)
            z = (count - median) / scale
            top = max(top, z)
            if count >= self.burst_min_count and z >= self.burst_z[0]:
                level = H if z >= self.burst_z[1] else M
                bursts.append(
                    Burst(
                        kind=kind,
                        count=count,
                        baseline_median=median,
                        z_score=round(z, 2),
                        level=level,
                    )
                )
        return bursts, round(max(0.0, min(1.0, top / (2 * self.burst_z[1]))), 3)

    async def _raise(self, report: ThreatReport, window: timedelta) -> None:
        now = datetime.now(UTC)
        self._raised = {k: until for k, until in self._raised.items() if until > now}
        for s in report.subjects:
            key = (report.tenant_id, s.subject_type, s.subject, s.level)
            if s.level < H or key in self._raised:
                continue
            self._raised[key] = now + window
            threat = Threat(
                tenant_id=report.tenant_id,
                subject_type=s.subject_type,
                subject=s.subject,
                level=s.level,
                reasons=tuple(sig.reason for sig in s.signals),
                window_start=report.window_start,
                window_end=report.window_end,
            )
            for callback in self.on_threat:
                try:
                    await callback(threat)
                except Exception:  # noqa: BLE001  (one failing sink must not silence the others)
                    _log.exception("threat callback failed", tenant=report.tenant_id)
