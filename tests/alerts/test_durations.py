"""Durations as Prometheus and Alertmanager write them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantry.alerts.durations import MAX_DURATION, format_duration, parse_duration
from tenantry.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("4h", timedelta(hours=4)),
        ("1h30m", timedelta(minutes=90)),
        ("250ms", timedelta(milliseconds=250)),
        ("1d12h", timedelta(hours=36)),
        ("2w", timedelta(days=14)),
        ("1y", timedelta(days=365)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "m", "30m1h", "1.5h", "-5m", "5 m", "5M", "1h1h", "11y"])
def test_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(text)


def test_a_non_string_is_refused() -> None:
    with pytest.raises(InvalidInput):
        parse_duration(300)  # type: ignore[arg-type]


@given(st.timedeltas(min_value=timedelta(0), max_value=MAX_DURATION))
def test_format_round_trips(value: timedelta) -> None:
    whole = value - value % timedelta(milliseconds=1)
    assert parse_duration(format_duration(whole)) == whole
