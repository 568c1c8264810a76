"""SlackSender against a Slack-like HTTP server on loopback (tests/support/slack_server.py):
one attempt each, classified; nothing sleeps, nothing retries behind the caller's back."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

import pytest
from structlog.testing import capture_logs

from tenantry.alerts import (
    BotTarget,
    Delivered,
    Permanent,
    Retryable,
    RetryAfter,
    SlackMessage,
    SlackSender,
    WebhookTarget,
    backoff,
)
from tenantry.errors import InvalidInput
from tests.alerts.conftest import BOT_TOKEN
from tests.support.slack_server import Behaviour, SlackServer

BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": "Disk almost full"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*db-1* is at 97 %"}},
]
MESSAGE = SlackMessage("Disk almost full: db-1 is at 97 %", BLOCKS)


@pytest.fixture
async def sender(slack: SlackServer) -> AsyncIterator[SlackSender]:
    async with SlackSender(api_base_url=slack.api_base_url, timeout=2.0) as s:
        yield s


def bot(channel: str = "C0ALERTS", token: str = BOT_TOKEN) -> BotTarget:
    return BotTarget(token, channel)


async def test_a_webhook_delivers_blocks_and_text(slack: SlackServer, sender: SlackSender) -> None:
    url = slack.webhook("C0ALERTS")
    result = await sender.send(WebhookTarget(url), MESSAGE)
    assert isinstance(result, Delivered)
    assert result.status == 200
    [held] = slack.messages("C0ALERTS")
    assert held["blocks"] == BLOCKS
    assert held["text"] == MESSAGE.text
    [request] = slack.requests
    assert request.path == url.removeprefix(f"http://127.0.0.1:{slack.port}")
    assert request.headers["content-type"].startswith("application/json")


async def test_chat_post_message_delivers_and_names_channel_and_ts(
    slack: SlackServer, sender: SlackSender
) -> None:
    result = await sender.send(bot(), MESSAGE)
    assert isinstance(result, Delivered)
    [held] = slack.messages("C0ALERTS")
    assert (result.channel, result.ts) == ("C0ALERTS", held["ts"])
    assert held["blocks"] == BLOCKS
    [request] = slack.requests
    assert request.path == "/api/chat.postMessage"
    assert request.headers["authorization"] == f"Bearer {BOT_TOKEN}"


async def test_a_reply_goes_into_the_thread_and_an_update_replaces_the_message(
    slack: SlackServer, sender: SlackSender
) -> None:
    first = await sender.send(bot(), MESSAGE)
    assert isinstance(first, Delivered)
    assert first.ts is not None
    reply = await sender.send(bot(), SlackMessage("still firing", thread_ts=first.ts))
    assert isinstance(reply, Delivered)
    assert reply.ts != first.ts
    resolved = SlackMessage("Resolved: db-1 at 60 %", update_ts=first.ts)
    update = await sender.send(bot(), resolved)
    assert isinstance(update, Delivered)
    assert update.ts == first.ts
    held = {m["ts"]: m for m in slack.messages("C0ALERTS")}
    assert len(held) == 2
    assert held[first.ts]["text"] == "Resolved: db-1 at 60 %"
    assert "edited" in held[first.ts]
    assert held[reply.ts]["thread_ts"] == first.ts
    assert [r.path for r in slack.requests][-1] == "/api/chat.update"


async def test_an_update_of_a_message_slack_does_not_have_is_permanent(
    sender: SlackSender,
) -> None:
    result = await sender.send(bot(), SlackMessage("x", update_ts="1.000001"))
    assert isinstance(result, Permanent)
    assert result.error == "message_not_found"


async def test_a_webhook_cannot_update_and_nothing_is_sent(
    slack: SlackServer, sender: SlackSender
) -> None:
    with pytest.raises(InvalidInput):
        await sender.send(WebhookTarget(slack.webhook("C0OPS")), SlackMessage("x", update_ts="1.2"))
    assert slack.requests == []


@pytest.mark.parametrize("via", ["webhook", "web"])
async def test_429_gives_its_retry_after_after_one_request(
    slack: SlackServer, sender: SlackSender, via: str
) -> None:
    target = WebhookTarget(slack.webhook("C0OPS")) if via == "webhook" else bot()
    slack.rate_limit(retry_after=2, times=3)
    result = await sender.send(target, MESSAGE)
    assert isinstance(result, RetryAfter)
    assert (result.seconds, result.status) == (2.0, 429)
    assert len(slack.requests) == 1  # no retry handler of slack-sdk waited and tried again
    assert result.elapsed < 1.0  # and nobody slept out the two seconds
    assert slack.messages() == []


async def test_429_without_retry_after_backs_off(slack: SlackServer, sender: SlackSender) -> None:
    slack.script(Behaviour(status=429))
    result = await sender.send(bot(), MESSAGE, attempt=3)
    assert isinstance(result, RetryAfter)
    assert 2.0 <= result.seconds <= 4.0


async def test_a_huge_retry_after_is_bounded(slack: SlackServer) -> None:
    slack.rate_limit(retry_after=86_400)
    async with SlackSender(api_base_url=slack.api_base_url, max_retry_after=600) as sender:
        result = await sender.send(bot(), MESSAGE)
    assert isinstance(result, RetryAfter)
    assert result.seconds == 600


@pytest.mark.parametrize("via", ["webhook", "web"])
@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_retryable_with_backoff(
    slack: SlackServer, sender: SlackSender, via: str, status: int
) -> None:
    target = WebhookTarget(slack.webhook("C0OPS")) if via == "webhook" else bot()
    slack.fail(status)
    result = await sender.send(target, MESSAGE, attempt=4)
    assert isinstance(result, Retryable)
    assert result.status == status
    assert 4.0 <= result.backoff <= 8.0  # 2**(4-1), less up to half of it
    assert len(slack.requests) == 1
    again = await sender.send(target, MESSAGE, attempt=5)  # the next request is answered
    assert isinstance(again, Delivered)


async def test_a_slow_answer_beyond_the_timeout_is_retryable(slack: SlackServer) -> None:
    slack.slow(3.0)
    async with SlackSender(api_base_url=slack.api_base_url, timeout=0.3) as sender:
        result = await sender.send(bot(), MESSAGE)
    assert isinstance(result, Retryable)
    assert result.reason == "timeout"
    assert result.elapsed < 2.0
    assert result.status is None


async def test_a_slow_answer_within_the_timeout_is_delivered(slack: SlackServer) -> None:
    slack.slow(0.3)
    async with SlackSender(api_base_url=slack.api_base_url, timeout=2.0) as sender:
        result = await sender.send(bot(), MESSAGE)
    assert isinstance(result, Delivered)
    assert result.elapsed >= 0.3


async def test_a_dropped_connection_is_retryable_and_not_retried(
    slack: SlackServer, sender: SlackSender
) -> None:
    slack.drop()
    result = await sender.send(bot(), MESSAGE)
    assert isinstance(result, Retryable)
    assert result.reason.startswith("connection_error")
    assert len(slack.requests) == 1  # slack-sdk's connection-error handler is off


@pytest.mark.parametrize("via", ["webhook", "web"])
async def test_a_closed_port_is_retryable(closed_port: int, via: str) -> None:
    base = f"http://127.0.0.1:{closed_port}"
    async with SlackSender(api_base_url=f"{base}/api/") as sender:
        target = WebhookTarget(f"{base}/services/T0/B0/xyz") if via == "webhook" else bot()
        result = await sender.send(target, MESSAGE, attempt=2)
    assert isinstance(result, Retryable)
    assert result.reason == "connection_refused"
    assert 1.0 <= result.backoff <= 2.0


async def test_the_connect_timeout_bounds_a_connection_nobody_takes(unanswered_port: int) -> None:
    base = f"http://127.0.0.1:{unanswered_port}/api/"
    async with SlackSender(api_base_url=base, timeout=30.0, connect_timeout=0.3) as sender:
        result = await sender.send(bot(), MESSAGE)
    assert isinstance(result, Retryable)
    assert result.reason == "connect_timeout"
    assert result.elapsed < 10.0  # well before the 30 s a whole request may take


@pytest.mark.parametrize(
    ("target", "message", "error"),
    [
        (bot(token="xoxb-revoked"), MESSAGE, "invalid_auth"),
        (bot(token=""), MESSAGE, "not_authed"),
        (bot(channel="C0NOWHERE"), MESSAGE, "channel_not_found"),
        (bot(), SlackMessage("x" * 40_001), "msg_too_long"),
        (bot(), SlackMessage("x", [BLOCKS[1]] * 51), "invalid_blocks"),
    ],
)
async def test_what_slack_refuses_is_permanent(
    slack: SlackServer, sender: SlackSender, target: BotTarget, message: SlackMessage, error: str
) -> None:
    result = await sender.send(target, message)
    assert isinstance(result, Permanent)
    assert result.error == error
    assert slack.messages() == []


async def test_what_a_webhook_refuses_is_permanent(slack: SlackServer, sender: SlackSender) -> None:
    url = slack.webhook("C0OPS")
    unknown = await sender.send(WebhookTarget(url + "-gone"), MESSAGE)
    assert isinstance(unknown, Permanent)
    assert (unknown.error, unknown.status) == ("no_service", 404)
    slack.script(Behaviour(status=400, body="invalid_payload"))
    refused = await sender.send(WebhookTarget(url), MESSAGE)
    assert isinstance(refused, Permanent)
    assert (refused.error, refused.status) == ("invalid_payload", 400)
    slack.script(Behaviour(status=403, body="<html>Forbidden: https://hooks.example/x</html>"))
    unreadable = await sender.send(WebhookTarget(url), MESSAGE)
    assert isinstance(unreadable, Permanent)
    assert unreadable.error == "http_403"  # a body that is no error code is not repeated


def test_a_message_without_its_text_fallback_is_refused_before_sending() -> None:
    with pytest.raises(InvalidInput):
        SlackMessage(" ", BLOCKS)


async def test_the_token_and_webhook_url_appear_in_no_log_or_repr(
    slack: SlackServer, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    hook = WebhookTarget(slack.webhook("C0OPS", tail="hooksecret"))
    secrets = [BOT_TOKEN, "hooksecret"]
    results: list[Any] = []
    caplog.set_level(logging.DEBUG)
    with capture_logs() as events:
        async with SlackSender(api_base_url=slack.api_base_url, timeout=0.3) as sender:
            results.append(await sender.send(hook, MESSAGE))
            results.append(await sender.send(bot(), MESSAGE))
            results.append(await sender.send(bot(token=BOT_TOKEN, channel="C0NOWHERE"), MESSAGE))
            slack.rate_limit(5)
            results.append(await sender.send(hook, MESSAGE))
            slack.slow(2.0)
            results.append(await sender.send(hook, MESSAGE))
            results.append(await sender.send(WebhookTarget(hook.url + "-gone"), MESSAGE))
        async with SlackSender(api_base_url=f"http://127.0.0.1:{closed_port}/api/") as down:
            results.append(await down.send(bot(), MESSAGE))
            closed = f"http://127.0.0.1:{closed_port}/services/T0/B0/hooksecret"
            results.append(await down.send(WebhookTarget(closed), MESSAGE))
    kinds = [type(r).__name__ for r in results]
    assert kinds == [
        *("Delivered", "Delivered", "Permanent", "RetryAfter", "Retryable", "Permanent"),
        *("Retryable", "Retryable"),
    ]
    assert len(events) == len(results)  # every attempt was logged
    texts = [repr(events), *(r.getMessage() for r in caplog.records), repr(sender), repr(down)]
    texts += [repr(r) for r in results] + [repr(hook), repr(bot())]
    for secret in secrets:
        assert not [t for t in texts if secret in t]


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(60.0, 0.5 * 2 ** (attempt - 1))
        waits = [backoff(attempt, base=0.5, cap=60.0, rng=rng) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # jittered
    assert backoff(10_000, cap=300.0) <= 300.0


async def test_a_retry_after_given_as_an_http_date_is_read(
    slack: SlackServer, sender: SlackSender
) -> None:
    slack.script(Behaviour(status=429, retry_after=formatdate(time.time() + 30, usegmt=True)))
    result = await sender.send(bot(), MESSAGE)
    assert isinstance(result, RetryAfter)
    assert 20 <= result.seconds <= 31


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Behaviour(status=502, body="<html>502 Bad Gateway</html>"), "http_502"),
        (
            Behaviour(status=200, body="{broken", content_type="application/json"),
            "unreadable_answer",
        ),
        (Behaviour(status=200, body="ok", content_type="text/plain"), "unreadable_answer"),
    ],
)
async def test_what_a_proxy_or_broken_front_end_answers_is_retryable(
    slack: SlackServer, sender: SlackSender, answer: Behaviour, reason: str
) -> None:
    slack.script(answer)
    result = await sender.send(bot(), MESSAGE)
    assert isinstance(result, Retryable)
    assert result.reason == reason


async def test_concurrent_attempts_share_one_session(slack: SlackServer) -> None:
    async with SlackSender(api_base_url=slack.api_base_url) as sender:
        results = await asyncio.gather(
            *(sender.send(bot(), SlackMessage(f"alert {i}")) for i in range(20))
        )
    assert all(isinstance(r, Delivered) for r in results)
    assert len({r.ts for r in results if isinstance(r, Delivered)}) == 20
    assert sorted(m["text"] for m in slack.messages()) == sorted(f"alert {i}" for i in range(20))


def test_a_target_key_names_the_channel_without_its_secret() -> None:
    hook = WebhookTarget("https://hooks.slack.com/services/T1/B1/topsecret")
    assert hook.key == WebhookTarget(hook.url).key
    assert hook.key != WebhookTarget(hook.url + "x").key
    assert bot("C0OPS").key != bot("C0ALERTS").key
    assert bot("C0OPS").key != bot("C0OPS", token="xoxb-other").key
    for key in (hook.key, bot().key):
        assert "topsecret" not in key
        assert BOT_TOKEN not in key
