"""What one delivery attempt is about and what it can end in: the target (an incoming webhook,
or a bot token and channel; their secrets kept out of ``repr``), the message, the four outcomes
(:data:`Attempt`), and the backoff a retryable failure suggests. :mod:`tenantry.alerts.delivery`
makes the attempts."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenantry.errors import InvalidInput

__all__ = [
    "Attempt",
    "BotTarget",
    "Delivered",
    "Permanent",
    "RetryAfter",
    "Retryable",
    "SlackMessage",
    "Target",
    "WebhookTarget",
    "backoff",
]

_RNG = random.Random()  # noqa: S311  jitter spreads retries; it guards no secret


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """An incoming webhook; its URL is its credential, kept out of ``repr``."""

    url: str = field(repr=False)

    @property
    def key(self) -> str:
        """Names the target in logs and in the outbox's per-target ``not_before``."""
        return f"webhook:{_digest(self.url)}"


@dataclass(frozen=True, slots=True)
class BotTarget:
    """A channel posted to with a bot token (kept out of ``repr``)."""

    token: str = field(repr=False)
    channel: str

    @property
    def key(self) -> str:
        return f"bot:{_digest(self.token)}:{self.channel}"


Target = WebhookTarget | BotTarget


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """Block Kit blocks and their text fallback (shown in notifications, read by screen readers;
    required: slack-sdk warns without it)."""

    text: str
    blocks: Sequence[Mapping[str, Any]] = ()
    thread_ts: str | None = None  #: reply in the thread of this message
    update_ts: str | None = None  #: replace this earlier message (``chat.update``; bots only)

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise InvalidInput("a Slack message needs its text fallback")


@dataclass(frozen=True, slots=True)
class Delivered:
    channel: str | None  #: None for a webhook: Slack answers it with "ok" only
    ts: str | None
    status: int
    elapsed: float


@dataclass(frozen=True, slots=True)
class RetryAfter:
    seconds: float  #: wait this long before anything else goes to the same target
    status: int
    elapsed: float


@dataclass(frozen=True, slots=True)
class Retryable:
    reason: str  #: ``http_503``, ``timeout``, ``connection_refused``, Slack's error code...
    backoff: float  #: suggested seconds before this message's next attempt
    status: int | None
    elapsed: float


@dataclass(frozen=True, slots=True)
class Permanent:
    error: str  #: Slack's error code, or ``http_<status>``
    status: int | None
    elapsed: float


Attempt = Delivered | RetryAfter | Retryable | Permanent


def backoff(
    attempt: int, *, base: float = 1.0, cap: float = 300.0, rng: random.Random | None = None
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...): ``base * 2**(n-1)``
    capped at ``cap``, of which a random half is taken off ("equal jitter": retries of many
    messages spread out, and none comes back at once)."""
    ceiling = min(cap, base * 2.0 ** min(max(attempt, 1) - 1, 64))
    return ceiling / 2 + (rng or _RNG).random() * ceiling / 2
