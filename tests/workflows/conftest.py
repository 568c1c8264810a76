"""Fixtures of the workflow tests: the loopback Slack of the alerts tests."""

from tests.alerts.conftest import slack

__all__ = ["slack"]
