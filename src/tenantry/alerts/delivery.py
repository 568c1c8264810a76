"""One attempt to deliver one Slack message, answered with a typed :data:`Attempt`.

:class:`SlackSender` posts through slack-sdk's async clients: an incoming webhook
(:class:`WebhookTarget`) or the Web API's ``chat.postMessage`` and ``chat.update`` with a bot
token (:class:`BotTarget`), blocks with their text fallback, in a thread or as an update of an
earlier message. It makes exactly one HTTP request, never sleeps, and never raises for what
Slack or the network did; the answer says what to do next:

    Delivered     posted (the Web API also names the channel and the message's ``ts``)
    RetryAfter    HTTP 429: Slack's ``Retry-After`` in seconds (bounded)
    Retryable     5xx, a timeout (of the connection or the whole request), a refused or
                  dropped connection, Slack's ``internal_error``, a Web API answer that
                  cannot be read (a duplicate beats a lost alert): try again after
                  ``backoff`` (exponential in the attempt number, with jitter, capped)
    Permanent     Slack refused the message or the credentials (``invalid_auth``,
                  ``channel_not_found``, ``invalid_payload``, ``msg_too_long``...): retrying
                  cannot help

slack-sdk's own retry handlers are switched off (``retry_handlers=[]``): they would sleep in the
worker and retry behind the caller's back. Its debug logs (which print a webhook's URL) are kept
off, and the webhook URL and the token appear in no log, no ``repr`` and no :data:`Attempt`;
logs name a target by :attr:`WebhookTarget.key` / :attr:`BotTarget.key`, a digest.

How the outbox (durable, in the database; a later step) drives it: each queued message has a
target key, an attempt count and a ``not_before`` time, and each target key has a
``not_before`` of its own. A worker picks due messages of targets that are due, oldest first,
one in flight per target (Slack limits posting per channel, and threads need order), and:

- ``Delivered``: marks the message sent and stores ``channel``/``ts``, so later messages of the
  same alert go into its thread (``thread_ts``) or update it (``update_ts``);
- ``RetryAfter``: sets the *target's* ``not_before = now + seconds``: every message for that
  channel waits, none is dropped, no worker sleeps;
- ``Retryable``: sets the *message's* ``not_before = now + backoff`` and counts the attempt,
  up to a limit, after which it is dead-lettered;
- ``Permanent``: dead-letters the message with the error, and alerts the operator.

Every attempt (outcome, status, elapsed time) is recorded by the outbox; this module only logs.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

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
from tenantry.errors import InvalidInput
from tenantry.logging import get_logger

__all__ = ["SLACK_API_URL", "SlackSender"]

SLACK_API_URL = "https://slack.com/api/"

log = get_logger(__name__)

#: slack-sdk's clients log a webhook's URL at DEBUG whenever their logger's *own* level is unset
#: (they test ``logger.level <= DEBUG``), whatever the application's level: give them one of
#: ours, set above that.
_SDK_LOG = logging.getLogger("tenantry.alerts.slack_sdk")
_SDK_LOG.setLevel(logging.INFO)

#: Slack's error codes are short snake_case words; anything else in a body is not repeated.
_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
#: Web API errors (``ok: false``) that a later attempt may get past.
_TRANSIENT = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "timeout"}
)
_RATE_LIMITED = frozenset({"ratelimited", "rate_limited"})


class SlackSender:
    """Sends through one aiohttp session (made on first use; :meth:`aclose` ends it).

    ``api_base_url`` is where the Web API lives (tests point it at a loopback server);
    ``timeout`` bounds a whole request and ``connect_timeout`` its connection; a Retry-After is
    bounded by ``max_retry_after``; ``backoff_base``/``backoff_cap`` shape :func:`backoff`.
    """

    def __init__(
        self,
        *,
        api_base_url: str = SLACK_API_URL,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        max_retry_after: float = 3600.0,
        rng: random.Random | None = None,
    ) -> None:
        if timeout <= 0 or connect_timeout <= 0:
            raise InvalidInput("timeouts must be positive")
        self.api_base_url = api_base_url if api_base_url.endswith("/") else api_base_url + "/"
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self._rng = rng
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return (
            f"SlackSender(api_base_url={self.api_base_url!r}, timeout={self.timeout}, "
            f"connect_timeout={self.connect_timeout})"
        )

    async def __aenter__(self) -> SlackSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=self.timeout, sock_connect=self.connect_timeout
                ),
                trust_env=False,
            )
        return self._session

    async def send(self, target: Target, message: SlackMessage, *, attempt: int = 1) -> Attempt:
        """One attempt (``attempt`` counts from 1 and shapes the backoff). Raises only for a
        caller's mistake (:class:`InvalidInput`), never for Slack's or the network's."""
        if attempt < 1:
            raise InvalidInput("attempt counts from 1")
        if isinstance(target, WebhookTarget) and message.update_ts is not None:
            raise InvalidInput("an incoming webhook cannot update a message: use a bot token")
        started = time.monotonic()
        try:
            if isinstance(target, WebhookTarget):
                result = await self._webhook(target, message, attempt, started)
            else:
                result = await self._web(target, message, attempt, started)
        except aiohttp.ConnectionTimeoutError:  # connect_timeout: nobody took the connection
            result = self._retryable("connect_timeout", None, attempt, started)
        except TimeoutError:  # aiohttp's other timeouts are TimeoutErrors too
            result = self._retryable("timeout", None, attempt, started)
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, ConnectionRefusedError)
            reason = "connection_refused" if refused else "connect_error"
            result = self._retryable(reason, None, attempt, started)
        except aiohttp.ClientError as exc:  # dropped connection, broken answer
            result = self._retryable(
                f"connection_error:{type(exc).__name__}", None, attempt, started
            )
        _log_attempt(target, attempt, result)
        return result

    async def _webhook(
        self, target: WebhookTarget, message: SlackMessage, attempt: int, started: float
    ) -> Attempt:
        client = AsyncWebhookClient(
            target.url, session=self._http(), retry_handlers=[], logger=_SDK_LOG
        )
        body: dict[str, Any] = {"text": message.text, "blocks": list(message.blocks) or None}
        if message.thread_ts is not None:
            body["thread_ts"] = message.thread_ts
        response = await client.send_dict(body)
        status = response.status_code
        if 200 <= status < 300:
            return Delivered(None, None, status, time.monotonic() - started)
        error = response.body.strip() if isinstance(response.body, str) else ""
        return self._failure(status, error, response.headers, attempt, started)

    async def _web(
        self, target: BotTarget, message: SlackMessage, attempt: int, started: float
    ) -> Attempt:
        client = AsyncWebClient(
            token=target.token,
            base_url=self.api_base_url,
            session=self._http(),
            retry_handlers=[],
            logger=_SDK_LOG,
        )
        blocks = [dict(block) for block in message.blocks] or None
        try:
            if message.update_ts is not None:
                response = await client.chat_update(
                    channel=target.channel, ts=message.update_ts, text=message.text, blocks=blocks
                )
            else:
                response = await client.chat_postMessage(
                    channel=target.channel,
                    text=message.text,
                    blocks=blocks,
                    thread_ts=message.thread_ts,
                )
        except AttributeError:  # slack-sdk's validate() on a 200 text/plain body: str.get
            return self._retryable("unreadable_answer", None, attempt, started)
        except SlackApiError as exc:
            answer = exc.response  # an AsyncSlackResponse, or aiohttp's when the body was no JSON
            status = int(getattr(answer, "status_code", getattr(answer, "status", 0)))
            data = getattr(answer, "data", None)
            error = str(data.get("error", "")) if isinstance(data, dict) else ""
            headers = getattr(answer, "headers", None) or {}
            return self._failure(status, error, headers, attempt, started)
        data = response.data if isinstance(response.data, dict) else {}
        channel, ts = data.get("channel"), data.get("ts")
        return Delivered(
            str(channel) if channel is not None else None,
            str(ts) if ts is not None else None,
            response.status_code,
            time.monotonic() - started,
        )

    def _failure(
        self, status: int, error: str, headers: Mapping[str, Any], attempt: int, started: float
    ) -> Attempt:
        code = error if _ERROR_CODE.fullmatch(error) else f"http_{status}"
        if status == 429 or code in _RATE_LIMITED:
            seconds = _retry_after(_header(headers, "retry-after"), self.max_retry_after)
            if seconds is None:  # a 429 that does not say how long: back off
                seconds = backoff(
                    attempt, base=self.backoff_base, cap=self.backoff_cap, rng=self._rng
                )
            return RetryAfter(seconds, status, time.monotonic() - started)
        if 200 <= status < 300 and code == f"http_{status}":  # unreadable: was it posted?
            return self._retryable("unreadable_answer", status, attempt, started)
        if status >= 500 or status == 408 or code in _TRANSIENT:
            return self._retryable(code, status, attempt, started)
        return Permanent(code, status, time.monotonic() - started)

    def _retryable(self, reason: str, status: int | None, attempt: int, started: float) -> Attempt:
        wait = backoff(attempt, base=self.backoff_base, cap=self.backoff_cap, rng=self._rng)
        return Retryable(reason, wait, status, time.monotonic() - started)


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if str(key).lower() == name:
            return str(value[0] if isinstance(value, list) and value else value)
    return None


def _retry_after(value: str | None, cap: float) -> float | None:
    """Seconds from a ``Retry-After`` (seconds, or an HTTP date), within ``[0, cap]``."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), cap)


def _log_attempt(target: Target, attempt: int, result: Attempt) -> None:
    fields: dict[str, Any] = {
        "target": target.key,
        "attempt": attempt,
        "outcome": type(result).__name__,
        "elapsed_ms": round(result.elapsed * 1000, 1),
    }
    match result:
        case Delivered(channel=channel, ts=ts):
            log.info("slack delivered", channel=channel, ts=ts, **fields)
        case RetryAfter(seconds=seconds):
            log.warning("slack rate limited", retry_after=seconds, **fields)
        case Retryable(reason=reason, backoff=wait, status=status):
            log.warning(
                "slack attempt failed", reason=reason, backoff=wait, status=status, **fields
            )
        case Permanent(error=error, status=status):
            log.error("slack refused", error=error, status=status, **fields)
