"""Alerts: rules over the metric series, routing as in Alertmanager, and localized Slack
alert templates delivered to each tenant's own Slack.

- :func:`parse_condition`: a rule's condition (``anomaly_score > 0.9``), parsed without ``eval``;
- :func:`load_rules` and :func:`next_state`: rules in the documents' YAML form, and the
  inactive → pending → firing → resolved state machine;
- :func:`parse_route` and :func:`route`, silences and :func:`is_inhibited`, and :func:`flush`:
  Alertmanager's routing, muting and notification timing, as pure functions;
- :class:`SlackSender`: one delivery attempt to Slack (webhook or Web API), its outcome typed.
"""

from tenantry.alerts.attempts import (
    Attempt,
    BotTarget,
    Delivered,
    Permanent,
    Retryable,
    RetryAfter,
    SlackMessage,
    Target,
    WebhookTarget,
    backoff,
)
from tenantry.alerts.delivery import SLACK_API_URL, SlackSender
from tenantry.alerts.durations import format_duration, parse_duration
from tenantry.alerts.expressions import (
    MAX_CONDITION_DEPTH,
    MAX_CONDITION_LENGTH,
    MAX_CONDITION_TERMS,
    Condition,
    SeriesRef,
    parse_condition,
)
from tenantry.alerts.grouping import Flush, GroupState, flush
from tenantry.alerts.matchers import Matcher, parse_matcher, parse_matchers_text
from tenantry.alerts.routing import (
    GROUP_BY_ALL,
    Route,
    RouteMatch,
    RouteTiming,
    group_key,
    parse_route,
    receivers,
    route,
)
from tenantry.alerts.rules import (
    AlertRule,
    AlertSeverity,
    AlertState,
    AlertStatus,
    load_rules,
    next_state,
)
from tenantry.alerts.suppression import (
    InhibitRule,
    Silence,
    active_silences,
    inhibited_by,
    is_inhibited,
    is_silenced,
    parse_inhibit_rules,
)

__all__ = [
    "GROUP_BY_ALL",
    "MAX_CONDITION_DEPTH",
    "MAX_CONDITION_LENGTH",
    "MAX_CONDITION_TERMS",
    "SLACK_API_URL",
    "AlertRule",
    "AlertSeverity",
    "AlertState",
    "AlertStatus",
    "Attempt",
    "BotTarget",
    "Condition",
    "Delivered",
    "Flush",
    "GroupState",
    "InhibitRule",
    "Matcher",
    "Permanent",
    "RetryAfter",
    "Retryable",
    "Route",
    "RouteMatch",
    "RouteTiming",
    "SeriesRef",
    "Silence",
    "SlackMessage",
    "SlackSender",
    "Target",
    "WebhookTarget",
    "active_silences",
    "backoff",
    "flush",
    "format_duration",
    "group_key",
    "inhibited_by",
    "is_inhibited",
    "is_silenced",
    "load_rules",
    "next_state",
    "parse_condition",
    "parse_duration",
    "parse_inhibit_rules",
    "parse_matcher",
    "parse_matchers_text",
    "parse_route",
    "receivers",
    "route",
]
