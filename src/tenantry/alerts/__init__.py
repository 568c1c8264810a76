"""Alerts: rules over the metric series, routing as in Alertmanager, and localized Slack
alert templates delivered to each tenant's own Slack."""

from tenantry.alerts.delivery import (
    SLACK_API_URL,
    Attempt,
    BotTarget,
    Delivered,
    Permanent,
    Retryable,
    RetryAfter,
    SlackMessage,
    SlackSender,
    Target,
    WebhookTarget,
    backoff,
)

__all__ = [
    "SLACK_API_URL",
    "Attempt",
    "BotTarget",
    "Delivered",
    "Permanent",
    "RetryAfter",
    "Retryable",
    "SlackMessage",
    "SlackSender",
    "Target",
    "WebhookTarget",
    "backoff",
]
