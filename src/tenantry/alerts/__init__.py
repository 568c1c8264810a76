"""Alerts: rules over the metric series, routing as in Alertmanager, and localized Slack
alert templates delivered to each tenant's own Slack.

- :func:`parse_condition`: a rule's condition (``anomaly_score > 0.9``), parsed without ``eval``;
- :func:`load_rules` and :func:`next_state`: rules in the documents' YAML form, and the
  inactive → pending → firing → resolved state machine;
- :func:`parse_route` and :func:`route`, silences and :func:`is_inhibited`, and :func:`flush`:
  Alertmanager's routing, muting and notification timing, as pure functions;
- :class:`SlackSender`: one delivery attempt to Slack (webhook or Web API), its outcome typed;
- the templates' parts: locale tags and their fallback chains (``locales``), CLDR formatting
  filters (``formatting``), the Jinja2 sandbox (``sandbox``) and the renderer on it
  (``templates``), and Block Kit output (``blocks``);
- :class:`AlertManager`: each tenant's rules, evaluated by the service, their states kept;
- :class:`AlertGroups`: routed alerts in Alertmanager's aggregation groups, notified at their
  route's ``group_wait``, ``group_interval`` and ``repeat_interval``;
- :class:`SilenceManager`: each tenant's silences as objects with expiry (Alertmanager's
  ``/api/v2/silences``), applied by the notifier;
- :class:`SlackFixtureManager`: each tenant's localized Slack alert templates (the documents'
  fixtures), stored, audited, sealed when sensitive and rendered by locale fallback, missing
  translations from a :class:`Translator` (:class:`TranslationMemory`,
  :class:`StoredTranslationMemory`, :class:`AILocalizationEngine`).
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
from tenantry.alerts.blocks import (
    MAX_BLOCKS,
    MAX_HEADER_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_TEXT_CHARS,
    AlertMessage,
    BuiltMessage,
    build_message,
    validate_blocks,
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
from tenantry.alerts.fixture_schemas import (
    LocaleTexts,
    RenderedFixture,
    SlackFixture,
    SlackFixtureEntity,
    TenantContext,
)
from tenantry.alerts.fixtures import SlackFixtureManager
from tenantry.alerts.formatting import (
    SEVERITY_EMOJI,
    STATUS_COLORS,
    Formatter,
    status_color,
    urgency_emoji,
)
from tenantry.alerts.grouping import Flush, GroupState, flush
from tenantry.alerts.groups import AlertGroups, GroupFlush, GroupView
from tenantry.alerts.locales import (
    FALLBACK_LOCALE,
    LocaleInfo,
    LocaleTag,
    Resolution,
    babel_locale,
    fallback_chain,
    normalize_locales,
    normalize_tag,
    parse_tag,
    resolve,
    supported_locales,
)
from tenantry.alerts.manager import AlertManager, AlertView, Transition
from tenantry.alerts.matchers import Matcher, parse_matcher, parse_matchers_text
from tenantry.alerts.memory import StoredTranslationMemory
from tenantry.alerts.notify import AlertNotifier, Delivery, Receiver
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
from tenantry.alerts.sandbox import RenderLimits, escape_mrkdwn
from tenantry.alerts.silences import (
    MAX_KEPT_EXPIRED,
    MAX_SILENCE_DURATION,
    MAX_TENANT_SILENCES,
    SILENCE_RETENTION,
    SilenceManager,
    SilenceState,
    SilenceView,
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
from tenantry.alerts.templates import TemplateRenderer
from tenantry.alerts.translation import (
    AILocalizationEngine,
    MachineTranslator,
    TranslationMemory,
    Translator,
)

__all__ = [
    "FALLBACK_LOCALE",
    "GROUP_BY_ALL",
    "MAX_BLOCKS",
    "MAX_CONDITION_DEPTH",
    "MAX_CONDITION_LENGTH",
    "MAX_CONDITION_TERMS",
    "MAX_HEADER_CHARS",
    "MAX_KEPT_EXPIRED",
    "MAX_MESSAGE_CHARS",
    "MAX_SILENCE_DURATION",
    "MAX_TENANT_SILENCES",
    "MAX_TEXT_CHARS",
    "SEVERITY_EMOJI",
    "SILENCE_RETENTION",
    "SLACK_API_URL",
    "STATUS_COLORS",
    "AILocalizationEngine",
    "AlertGroups",
    "AlertManager",
    "AlertMessage",
    "AlertNotifier",
    "AlertRule",
    "AlertSeverity",
    "AlertState",
    "AlertStatus",
    "AlertView",
    "Attempt",
    "BotTarget",
    "BuiltMessage",
    "Condition",
    "Delivered",
    "Delivery",
    "Flush",
    "Formatter",
    "GroupFlush",
    "GroupState",
    "GroupView",
    "InhibitRule",
    "LocaleInfo",
    "LocaleTag",
    "LocaleTexts",
    "MachineTranslator",
    "Matcher",
    "Permanent",
    "Receiver",
    "RenderLimits",
    "RenderedFixture",
    "Resolution",
    "RetryAfter",
    "Retryable",
    "Route",
    "RouteMatch",
    "RouteTiming",
    "SeriesRef",
    "Silence",
    "SilenceManager",
    "SilenceState",
    "SilenceView",
    "SlackFixture",
    "SlackFixtureEntity",
    "SlackFixtureManager",
    "SlackMessage",
    "SlackSender",
    "StoredTranslationMemory",
    "Target",
    "TemplateRenderer",
    "TenantContext",
    "Transition",
    "TranslationMemory",
    "Translator",
    "WebhookTarget",
    "active_silences",
    "babel_locale",
    "backoff",
    "build_message",
    "escape_mrkdwn",
    "fallback_chain",
    "flush",
    "format_duration",
    "group_key",
    "inhibited_by",
    "is_inhibited",
    "is_silenced",
    "load_rules",
    "next_state",
    "normalize_locales",
    "normalize_tag",
    "parse_condition",
    "parse_duration",
    "parse_inhibit_rules",
    "parse_matcher",
    "parse_matchers_text",
    "parse_route",
    "parse_tag",
    "receivers",
    "resolve",
    "route",
    "status_color",
    "supported_locales",
    "urgency_emoji",
    "validate_blocks",
]
