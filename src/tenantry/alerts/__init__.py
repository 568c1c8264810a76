"""Alerts: rules over the metric series, routing as in Alertmanager, and localized Slack
alert templates delivered to each tenant's own Slack."""

__all__: list[str] = []
