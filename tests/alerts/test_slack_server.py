"""The loopback Slack itself, on what SlackSender does not send: a form-encoded Web API call with
its token in the body, and the record of requests others (the outbox, the benchmarks) read."""

from __future__ import annotations

import json

import httpx

from tests.alerts.conftest import BOT_TOKEN
from tests.support.slack_server import SlackServer


def test_a_form_encoded_call_with_the_token_in_its_body(slack: SlackServer) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    form = {"token": BOT_TOKEN, "channel": "C0OPS", "text": "hi", "blocks": json.dumps(blocks)}
    answer = httpx.post(slack.api_base_url + "chat.postMessage", data=form).json()
    assert answer["ok"] is True
    assert answer["message"]["blocks"] == blocks
    wrong = httpx.post(slack.api_base_url + "chat.postMessage", data={**form, "token": "xoxb-no"})
    assert wrong.json() == {"ok": False, "error": "invalid_auth"}
    first, second = slack.requests
    assert first.body["blocks"] == blocks
    assert first.at <= second.at


def test_scripted_behaviours_are_met_in_order_then_normal_answers(slack: SlackServer) -> None:
    url = slack.webhook("C0OPS")
    slack.rate_limit(retry_after=7)
    slack.fail(502)
    answers = [httpx.post(url, json={"text": "x"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 502, 200]
    assert answers[0].headers["retry-after"] == "7"
    assert answers[0].text == "rate_limited"
    assert answers[2].text == "ok"
    assert len(slack.messages("C0OPS")) == 1
