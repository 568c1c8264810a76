"""Formatting filters: CLDR numbers, money, dates, durations and plurals; emoji and colours."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tenantry.alerts import Formatter, status_color, supported_locales, urgency_emoji
from tenantry.errors import InvalidInput

NBSP = "\u00a0"
MOMENT = dt.datetime(2026, 12, 6, 23, 30, tzinfo=dt.UTC)  # already the 7th in Vienna and Tokyo


def test_numbers_follow_the_locale() -> None:
    assert Formatter.for_locale("de-DE").number(1234.5) == "1.234,5"
    assert Formatter.for_locale("en-US").number(1234.5) == "1,234.5"
    assert Formatter.for_locale("fr-FR").number(1234.5) == "1\u202f234,5"
    assert Formatter.for_locale("hi-IN").number(1234567) == "12,34,567"  # lakh grouping
    assert Formatter.for_locale("de").number("1234.5", 2) == "1.234,50"  # numeric strings too
    assert Formatter.for_locale("en").number(Decimal("0.1") + Decimal("0.2"), 1) == "0.3"


def test_percentages_take_a_ratio() -> None:
    assert Formatter.for_locale("de").percent(0.1234) == f"12{NBSP}%"
    assert Formatter.for_locale("de").percent(0.1234, 1) == f"12,3{NBSP}%"
    assert Formatter.for_locale("en").percent(0.5) == "50%"
    assert Formatter.for_locale("tr").percent(0.5) == "%50"


def test_currencies() -> None:
    assert Formatter.for_locale("de-DE").currency(1234.5, "EUR") == f"1.234,50{NBSP}€"
    assert Formatter.for_locale("de-AT").currency(1234.5, "eur") == f"€{NBSP}1.234,50"
    assert Formatter.for_locale("en-US").currency(1234.5, "USD") == "$1,234.50"
    assert Formatter.for_locale("ja").currency(1234.5, "JPY") == "￥1,234"
    with pytest.raises(InvalidInput, match="filter currency: 'XYZ' is not an ISO 4217"):
        Formatter.for_locale("en").currency(1, "XYZ")


def test_dates_are_shown_in_the_tenant_zone() -> None:
    vienna = Formatter.for_locale("de-AT", "Europe/Vienna")
    assert vienna.date(MOMENT) == "07.12.2026"
    assert vienna.datetime(MOMENT, "short") == "07.12.26, 00:30"
    assert vienna.time(MOMENT) == "00:30"
    assert Formatter.for_locale("en-US").date(MOMENT, "long") == "December 6, 2026"
    assert Formatter.for_locale("ja", "Asia/Tokyo").date(MOMENT, "long") == "2026年12月7日"
    assert vienna.date(MOMENT, "d. MMMM y") == "7. Dezember 2026"  # a CLDR pattern


def test_dates_read_what_a_context_holds() -> None:
    utc = Formatter.for_locale("en-GB")
    as_datetime = utc.datetime(MOMENT)
    assert utc.datetime("2026-12-06T23:30:00Z") == as_datetime
    assert utc.datetime("2026-12-06T23:30:00") == as_datetime  # naive means UTC
    assert utc.datetime(MOMENT.timestamp()) == as_datetime  # epoch seconds
    assert utc.date(dt.date(2026, 12, 6)) == "6 Dec 2026"
    for bad in ("yesterday", [1], None, True):
        with pytest.raises(InvalidInput, match="filter datetime"):
            utc.datetime(bad)
    with pytest.raises(InvalidInput, match="filter date"):
        utc.date(MOMENT, "x" * 100)


def test_durations() -> None:
    de = Formatter.for_locale("de")
    assert de.duration(3700) == "1 Stunde"
    assert de.duration(dt.timedelta(days=2), add_direction=True) == "in 2 Tagen"
    assert de.duration(-120, add_direction=True) == "vor 2 Minuten"
    assert Formatter.for_locale("en").duration(90, format="short") == "2 min"
    assert Formatter.for_locale("en").duration(30, granularity="minute") == "1 minute"
    with pytest.raises(InvalidInput, match="not one of year"):
        de.duration(1, granularity="fortnight")
    with pytest.raises(InvalidInput, match="too long a duration"):
        de.duration(Decimal("1e25"))


@pytest.mark.parametrize(
    ("tag", "counts", "expected"),
    [
        ("en", (0, 1, 2), ["0 errors", "1 error", "2 errors"]),
        ("fr", (0, 1, 2), ["0 error", "1 error", "2 errors"]),  # French: 0 is singular
        ("ja", (1, 2), ["1 errors", "2 errors"]),  # no plural forms: always "other"
    ],
)
def test_plural_positional_forms(tag: str, counts: tuple[int, ...], expected: list[str]) -> None:
    formatter = Formatter.for_locale(tag)
    assert [formatter.plural(n, "# error", "# errors") for n in counts] == expected


def test_plural_categories_follow_cldr() -> None:
    pl = Formatter.for_locale("pl")
    forms = {"one": "# błąd", "few": "# błędy", "many": "# błędów", "other": "# błędu"}
    assert [pl.plural(n, **forms) for n in (1, 2, 5, 22, 1.5)] == [
        "1 błąd",
        "2 błędy",
        "5 błędów",
        "22 błędy",
        "1,5 błędu",
    ]
    ar = Formatter.for_locale("ar")
    forms = {"zero": "z", "one": "o", "two": "t", "few": "f", "many": "m", "other": "x"}
    assert "".join(ar.plural(n, **forms) for n in (0, 1, 2, 3, 11, 100)) == "zotfmx"
    assert Formatter.for_locale("de").plural(1000, one="#", other="# Fälle") == "1.000 Fälle"


def test_plural_mistakes_are_named() -> None:
    en = Formatter.for_locale("en")
    with pytest.raises(InvalidInput, match="no plural category 'single'"):
        en.plural(1, single="x", other="y")
    with pytest.raises(InvalidInput, match="not both"):
        en.plural(1, "x", other="y")
    with pytest.raises(InvalidInput, match="no form for 'one' nor 'other'"):
        en.plural(1, few="x")
    with pytest.raises(InvalidInput, match="is not a number"):
        en.plural("many", "x", "y")


@pytest.mark.parametrize("value", ["abc", "", None, True, [1], "1e999999", 10**400, "NaN-ish"])
def test_numbers_refuse_what_is_not_a_bounded_number(value: object) -> None:
    with pytest.raises(InvalidInput, match="filter number"):
        Formatter.for_locale("en").number(value)


def test_digits_are_bounded() -> None:
    with pytest.raises(InvalidInput, match="number of digits"):
        Formatter.for_locale("en").number(1, 10**6)


def test_time_zones_are_checked() -> None:
    for bad in ("Mars/Base", "../../etc/passwd", ""):
        with pytest.raises(InvalidInput, match="unknown time zone"):
            Formatter.for_locale("en", bad)
    with pytest.raises(InvalidInput, match="invalid locale"):
        Formatter.for_locale("nonsense!")


def test_every_platform_language_formats() -> None:
    """Each language of the platform formats all kinds of value (CLDR data present)."""
    for info in supported_locales():
        formatter = Formatter.for_locale(info.default_tag, "Europe/Berlin")
        for name, output in (
            ("number", formatter.number(1234567.891)),
            ("percent", formatter.percent(0.25)),
            ("currency", formatter.currency(99.5, "EUR")),
            ("datetime", formatter.datetime(MOMENT, "long")),
            ("duration", formatter.duration(7200)),
            ("plural", formatter.plural(3, "#", "#")),
        ):
            assert output.strip(), (info.tag, name)


def test_urgency_emoji_and_status_color() -> None:
    assert [urgency_emoji(s) for s in ("critical", "HIGH", " medium ", "low", "info")] == [
        "🚨",
        "🔴",
        "🟠",
        "🟡",
        "🔵",
    ]
    assert urgency_emoji("catastrophic") == "⚪"
    assert status_color("firing") == "#E01E5A"
    assert status_color("Resolved") == "#2EB67D"
    assert status_color("pending") == "#ECB22E"
    assert status_color(None) == "#868686"
