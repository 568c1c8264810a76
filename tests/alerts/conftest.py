"""Fixtures of the alerts tests: a Slack-like server on loopback, and a port nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.support.slack_server import SlackServer

#: The bot token and channels the loopback Slack knows.
BOT_TOKEN = "xoxb-1111-2222-loopbacksecret"
CHANNELS = {"C0ALERTS", "C0OPS"}


class Clock:
    """A wall clock the test moves: ``clock.at = ...``."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    with SlackServer(tokens={BOT_TOKEN}, channels=CHANNELS) as server:
        yield server


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that is bound (so nothing else takes it) but not listening: a connection
    to it is refused, as to a Slack that is down."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A loopback port whose listener never accepts and whose backlog is full: a new connection
    hangs in its handshake, as to a host that drops packets."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        fillers = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        try:
            yield port
        finally:
            for filler in fillers:
                filler.close()
