"""Alert tables: each tenant's rules, and where each rule's alert stands (durable, so a restart
neither forgets a pending ``for`` nor fires twice; migration 0014); each tenant's Slack alert
templates, the documents' "fixtures" (migration 0015); its receivers and the outbox of its alert
messages (migration 0016), its routing (migration 0017), every delivery attempt (0018), the
aggregation groups its routed alerts wait in (0019) and its silences (0020).

A fixture's translations are ``locales`` (JSON) or, for a sensitive fixture, ``sealed`` (the same
JSON sealed with the tenant's data key for ``slack_fixtures.locales`` and the fixture's id);
exactly one of them is set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    Interval,
    LargeBinary,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from tenantry.db.rls import tenant_table

__all__ = [
    "STATUSES",
    "TRANSLATION_KINDS",
    "alert_attempts",
    "alert_groups",
    "alert_outbox",
    "alert_receivers",
    "alert_routing",
    "alert_rules",
    "alert_silences",
    "alert_states",
    "slack_fixtures",
    "translation_memory",
]

STATUSES = ("inactive", "pending", "firing", "resolved")
_STATUSES = ", ".join(f"'{s}'" for s in STATUSES)

alert_rules = tenant_table(
    "alert_rules",
    Column("name", Text, primary_key=True),
    #: The rule as the tenant wrote it (name, condition, severity, for, labels, annotations).
    Column("definition", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    info={"sample_row": {"definition": {"name": "r", "condition": "x > 1", "severity": "info"}}},
)

alert_states = tenant_table(
    "alert_states",
    Column("rule_name", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("active_since", DateTime(timezone=True), nullable=True),
    Column("fired_at", DateTime(timezone=True), nullable=True),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("evaluated_at", DateTime(timezone=True), nullable=True),
    #: The series the condition read at the last evaluation, and their values.
    Column("observed", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    CheckConstraint(f"status in ({_STATUSES})", name="status"),
    info={"sample_row": {"status": "inactive", "observed": {}}},
)

#: Where a tenant's alerts go: an incoming webhook or a bot token and channel, the secret sealed
#: with the tenant's key (purpose ``alerts.receiver``), never returned by any read.
alert_receivers = tenant_table(
    "alert_receivers",
    Column("name", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("channel", Text, nullable=True),
    Column("secret", LargeBinary, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("kind in ('webhook', 'bot')", name="kind"),
    info={"sample_row": {"kind": "webhook"}},
)

#: The durable outbox of alert messages: queued until delivered, failed for good, or given up.
alert_outbox = tenant_table(
    "alert_outbox",
    Column("id", Text, primary_key=True),
    Column("receiver", Text, nullable=False),
    Column("target_key", Text, nullable=False),
    Column("rule_name", Text, nullable=False),
    Column("transition", Text, nullable=False),
    Column("message", JSONB, nullable=False),
    Column("status", Text, nullable=False, server_default="queued"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("not_before", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_error", Text, nullable=True),
    Column("slack_ts", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    #: The aggregation group the message notifies (routed alerts), else NULL.
    Column("group_id", Text, nullable=True),
    CheckConstraint("status in ('queued', 'sent', 'failed')", name="status"),
    Index("ix_alert_outbox_due", "tenant_id", "status", "not_before"),
    info={"sample_row": {"status": "queued", "attempts": 0, "message": {"text": "x"}}},
)

#: A tenant's routing (route tree, inhibition rules, silences) as the YAML it set.
alert_routing = tenant_table(
    "alert_routing",
    Column("source", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    info={"sample_row": {"source": "route:\n  receiver: default\n"}},
)

slack_fixtures = tenant_table(
    "slack_fixtures",
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("default_locale", Text, nullable=False),
    Column("sensitive", Boolean, nullable=False, server_default=text("false")),
    #: ``{tag: {"title", "description", "action_required"}}`` (templates), when not sensitive.
    Column("locales", JSONB(none_as_null=True), nullable=True),
    #: The same, sealed with the tenant's key, when sensitive.
    Column("sealed", LargeBinary, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "(sensitive AND sealed IS NOT NULL AND locales IS NULL) OR "
        "(NOT sensitive AND sealed IS NULL AND locales IS NOT NULL)",
        name="sealed_if_sensitive",
    ),
    info={
        "sample_row": {
            "name": "sample",
            "severity": "info",
            "default_locale": "en",
            "sensitive": False,
            "locales": {"en": {"title": "t", "description": "d", "action_required": ""}},
            "sealed": None,
        }
    },
)

TRANSLATION_KINDS = ("memory", "term")

translation_memory = tenant_table(
    "translation_memory",
    #: ``memory``: a whole text; ``term``: a glossary term (matched lower-cased, any language).
    Column("kind", Text, primary_key=True),
    #: The source's language (``de``); ``*`` for a term.
    Column("source_language", Text, primary_key=True),
    Column("target_locale", Text, primary_key=True),
    #: SHA-256 of the source text (the key: a text may be longer than an index entry).
    Column("source_digest", LargeBinary, primary_key=True),
    Column("source", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("kind in ('memory', 'term')", name="kind"),
    info={"sample_row": {"kind": "memory", "source_language": "en", "target_locale": "de"}},
)

#: Every delivery attempt of an outbox message: when, its number, and how it ended.
alert_attempts = tenant_table(
    "alert_attempts",
    Column("outbox_id", Text, primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("outcome", Text, nullable=False),
    Column("detail", Text, nullable=True),
    info={"sample_row": {"attempt": 1, "outcome": "sent"}},
)

#: A routed alert's aggregation group (Alertmanager's): one per route, receiver and values of the
#: route's ``group_by`` labels; its timings, what its last notification listed, its alerts
#: (``{rule: {status, labels, ..., message}}``) and when it is flushed next.
alert_groups = tenant_table(
    "alert_groups",
    #: ``ag_`` and a digest of the route's path, the receiver and the group key.
    Column("id", Text, primary_key=True),
    Column("group_key", Text, nullable=False),
    Column("route_path", Text, nullable=False),
    Column("receiver", Text, nullable=False),
    Column("group_labels", JSONB, nullable=False),
    Column("group_wait", Interval, nullable=False),
    Column("group_interval", Interval, nullable=False),
    Column("repeat_interval", Interval, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("flushed_at", DateTime(timezone=True), nullable=True),
    Column("notified_at", DateTime(timezone=True), nullable=True),
    Column("notified_firing", ARRAY(Text), nullable=False, server_default="{}"),
    Column("notified_resolved", ARRAY(Text), nullable=False, server_default="{}"),
    Column("alerts", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("next_flush_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_alert_groups_due", "tenant_id", "next_flush_at"),
    info={
        "sample_row": {
            "group_key": "{}:{}",
            "route_path": "route",
            "receiver": "default",
            "group_labels": {},
            "group_wait": timedelta(seconds=30),
            "group_interval": timedelta(minutes=5),
            "repeat_interval": timedelta(hours=4),
            "created_at": datetime(2026, 12, 6, tzinfo=UTC),
            "next_flush_at": datetime(2026, 12, 6, tzinfo=UTC),
        }
    },
)


#: A tenant's silences (``tenantry.alerts.silences``): matchers in Alertmanager's text form, one a
#: matcher; muting from ``starts_at`` until (not including) ``ends_at``. An expired one is kept
#: for a retention, then collected.
alert_silences = tenant_table(
    "alert_silences",
    Column("id", Uuid, primary_key=True),
    Column("matchers", ARRAY(Text), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("created_by", Text, nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("cardinality(matchers) >= 1", name="has_matchers"),
    CheckConstraint("ends_at >= starts_at", name="ends_after"),
    Index("ix_alert_silences_ends_at", "tenant_id", "ends_at"),
    info={
        "sample_row": {
            "matchers": ['alertname="sample"'],
            "starts_at": datetime(2026, 1, 1, tzinfo=UTC),
            "ends_at": datetime(2026, 1, 2, tzinfo=UTC),
        }
    },
)
