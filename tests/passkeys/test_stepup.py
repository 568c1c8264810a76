"""When ADMIN sessions need a passkey assertion, and when the one they have is fresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantry.errors import InvalidInput
from tenantry.passkeys.stepup import (
    CLOCK_SKEW,
    DEFAULT_STEP_UP_MAX_AGE,
    assertion_is_fresh,
    step_up_required,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def test_freshness_edges() -> None:
    five = DEFAULT_STEP_UP_MAX_AGE
    assert five == timedelta(minutes=5)
    assert not assertion_is_fresh(None, five, NOW)
    assert assertion_is_fresh(NOW, five, NOW)
    assert assertion_is_fresh(NOW - five, five, NOW)
    assert not assertion_is_fresh(NOW - five - timedelta(microseconds=1), five, NOW)
    assert assertion_is_fresh(NOW + CLOCK_SKEW, five, NOW)
    assert not assertion_is_fresh(NOW + CLOCK_SKEW + timedelta(seconds=1), five, NOW)
    assert not assertion_is_fresh(NOW - timedelta(seconds=1), timedelta(0), NOW)


def test_naive_times_and_negative_ages_are_refused() -> None:
    with pytest.raises(InvalidInput, match="timezone-aware"):
        assertion_is_fresh(datetime(2025, 6, 1), timedelta(minutes=5), NOW)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        assertion_is_fresh(None, timedelta(minutes=5), datetime(2025, 6, 1))
    with pytest.raises(InvalidInput, match="negative"):
        assertion_is_fresh(NOW, timedelta(seconds=-1), NOW)


@given(age=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)))
def test_fresh_exactly_within_max_age(age: timedelta) -> None:
    max_age = timedelta(minutes=15)
    assert assertion_is_fresh(NOW - age, max_age, NOW) is (age <= max_age)


def test_which_sessions_need_passkeys() -> None:
    assert step_up_required("admin", "critical")
    assert step_up_required("ADMIN", "quantum")
    assert not step_up_required("admin", "high")
    assert not step_up_required("user", "quantum")
    assert not step_up_required(None, None)
