"""Alerts: rules over the metric series, routing as in Alertmanager, and localized Slack
alert templates delivered to each tenant's own Slack."""

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
