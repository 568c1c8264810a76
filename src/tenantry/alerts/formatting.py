"""Template filters: numbers, money, dates, durations and plurals in the message's locale (CLDR,
through Babel) and the tenant's time zone; and the documents' ``urgency_emoji`` and
``status_color``.

A :class:`Formatter` is made per message (``Formatter.for_locale("de-AT", "Europe/Vienna")``) and
hands the renderer its filters. Every filter takes what an alert's context holds (numbers,
numeric strings, datetimes, ISO 8601 strings, epoch seconds, timedeltas) and raises
:class:`~tenantry.errors.InvalidInput` naming the filter and the value it cannot read; sizes are
bounded so a filter never builds a huge string (exponents, digits, patterns).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, dates, numbers

from tenantry.alerts.locales import babel_locale
from tenantry.errors import InvalidInput

__all__ = ["SEVERITY_EMOJI", "STATUS_COLORS", "Formatter", "status_color", "urgency_emoji"]

#: ``urgency_emoji``: a severity (an alert's or a threat's) to the sign that leads its message.
SEVERITY_EMOJI = {
    "critical": "🚨",
    "high": "🔴",
    "medium": "🟠",
    "warning": "🟠",
    "low": "🟡",
    "info": "🔵",
}
_UNKNOWN_EMOJI = "⚪"
#: ``status_color``: an alert's state to the colour bar of its message (Slack's own palette).
STATUS_COLORS = {
    "firing": "#E01E5A",
    "pending": "#ECB22E",
    "resolved": "#2EB67D",
    "inactive": "#868686",
    "silenced": "#868686",
}
_UNKNOWN_COLOR = "#868686"

_STYLES = ("short", "medium", "long", "full")
_DURATION_STYLES = ("narrow", "short", "long")
_UNITS = ("year", "month", "week", "day", "hour", "minute", "second")
_PLURAL_CATEGORIES = ("zero", "one", "two", "few", "many", "other")
_MAX_EXPONENT = 30  # |value| below 10**30: money and metrics, never a 10**9-digit number
_MAX_DIGITS = 12
_MAX_PATTERN = 64
_MAX_FORM = 1000


def urgency_emoji(severity: object) -> str:
    """The sign of a severity (``critical`` → 🚨); ⚪ for one it does not know."""
    return SEVERITY_EMOJI.get(str(severity).strip().lower(), _UNKNOWN_EMOJI)


def status_color(status: object) -> str:
    """The colour of an alert state (``firing`` → ``#E01E5A``); grey for one it does not know."""
    return STATUS_COLORS.get(str(status).strip().lower(), _UNKNOWN_COLOR)


def _fail(name: str, value: object, why: str) -> InvalidInput:
    return InvalidInput(f"filter {name}: {InvalidInput.excerpt(value)} {why}")


def _number(name: str, value: object) -> Decimal | int:
    """``value`` as a number of bounded size, or :class:`InvalidInput`."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise _fail(name, value, "is not a number")
    if isinstance(value, int) and value.bit_length() < 64:
        return value
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, ValueError):
        raise _fail(name, value, "is not a number") from None
    if number.is_finite() and number != 0 and abs(number.adjusted()) > _MAX_EXPONENT:
        raise _fail(name, value, f"is outside ±10**{_MAX_EXPONENT}")
    return number


def _digits(name: str, digits: object) -> int:
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= _MAX_DIGITS:
        raise _fail(name, digits, f"is not a number of digits from 0 to {_MAX_DIGITS}")
    return digits


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _fail(name, value, f"is not one of {', '.join(allowed)}")
    return str(value)


def _style(name: str, value: object) -> str:
    """A named style, or a CLDR pattern (``d. MMMM y``) of bounded length."""
    if isinstance(value, str) and (value in _STYLES or 0 < len(value) <= _MAX_PATTERN):
        return value
    raise _fail(name, value, f"is not one of {', '.join(_STYLES)} nor a short CLDR pattern")


@dataclass(frozen=True, slots=True)
class Formatter:
    """The filters of one message: its locale and the tenant's time zone."""

    locale: Locale
    tzinfo: dt.tzinfo

    @classmethod
    def for_locale(cls, tag: str, time_zone: str = "UTC") -> Formatter:
        """``tag`` (BCP 47) and an IANA time zone name, each checked."""
        try:
            zone = ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            shown = InvalidInput.excerpt(time_zone)
            raise InvalidInput(f"unknown time zone {shown}: use an IANA name") from None
        locale = babel_locale(tag)
        # Babel reads a locale's CLDR data on first use; read it here, before a render's time
        # budget starts, so that the first message in a locale is not cut off by a file read.
        locale.number_symbols  # noqa: B018 - the access loads the data
        return cls(locale, zone)

    def filters(self) -> dict[str, Callable[..., str]]:
        """The template filters, by name."""
        return {
            "number": self.number,
            "percent": self.percent,
            "currency": self.currency,
            "date": self.date,
            "time": self.time,
            "datetime": self.datetime,
            "duration": self.duration,
            "plural": self.plural,
            "urgency_emoji": urgency_emoji,
            "status_color": status_color,
        }

    def number(self, value: object, digits: int | None = None) -> str:
        """``1234.5`` → ``1.234,5`` (de); ``digits`` fixes the decimals."""
        number = _number("number", value)
        if digits is None:
            return numbers.format_decimal(number, locale=self.locale)
        fixed = _digits("number", digits)
        pattern = copy.copy(numbers.parse_pattern(self.locale.decimal_formats[None].pattern))
        pattern.frac_prec = (fixed, fixed)
        return str(pattern.apply(number, self.locale))

    def percent(self, value: object, digits: int = 0) -> str:
        """A ratio as a percentage: ``0.123`` → ``12 %`` (de), ``12,3 %`` with ``digits=1``."""
        number = _number("percent", value)
        fixed = _digits("percent", digits)
        pattern = copy.copy(numbers.parse_pattern(self.locale.percent_formats[None].pattern))
        pattern.frac_prec = (fixed, fixed)
        return str(pattern.apply(number, self.locale))

    def currency(self, value: object, code: object) -> str:
        """``1234.5 | currency("EUR")`` → ``1.234,50 €`` (de-DE)."""
        number = _number("currency", value)
        if not isinstance(code, str) or not numbers.is_currency(code.upper()):
            raise _fail("currency", code, "is not an ISO 4217 currency code")
        return numbers.format_currency(number, code.upper(), locale=self.locale)

    def _moment(self, name: str, value: object) -> dt.datetime:
        """``value`` as an aware datetime in the tenant's zone (naive values are UTC)."""
        moment: dt.datetime
        if isinstance(value, dt.datetime):
            moment = value
        elif isinstance(value, dt.date):
            moment = dt.datetime.combine(value, dt.time())
        elif isinstance(value, int | float) and not isinstance(value, bool):
            try:
                moment = dt.datetime.fromtimestamp(value, dt.UTC)
            except (OverflowError, OSError, ValueError):
                raise _fail(name, value, "is not a time in epoch seconds") from None
        elif isinstance(value, str) and len(value) <= _MAX_PATTERN:
            try:
                moment = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                raise _fail(name, value, "is not an ISO 8601 time") from None
        else:
            raise _fail(name, value, "is not a date or time")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(self.tzinfo)

    def _dates(self, name: str, call: Callable[[], str]) -> str:
        try:
            return call()
        except (ValueError, KeyError, AttributeError) as error:
            raise InvalidInput(f"filter {name}: {error}") from None

    def date(self, value: object, format: str = "medium") -> str:
        """The date in the tenant's zone: ``06.12.2026`` (de, medium) or a CLDR pattern."""
        moment, style = self._moment("date", value), _style("date", format)
        return self._dates("date", lambda: dates.format_date(moment, style, locale=self.locale))

    def time(self, value: object, format: str = "short") -> str:
        """The time of day in the tenant's zone: ``11:00`` (de, short)."""
        moment, style = self._moment("time", value), _style("time", format)
        return self._dates(
            "time", lambda: dates.format_time(moment, style, tzinfo=self.tzinfo, locale=self.locale)
        )

    def datetime(self, value: object, format: str = "medium") -> str:
        """Date and time in the tenant's zone: ``06.12.2026, 11:00:00`` (de, medium)."""
        moment, style = self._moment("datetime", value), _style("datetime", format)
        return self._dates(
            "datetime",
            lambda: dates.format_datetime(moment, style, tzinfo=self.tzinfo, locale=self.locale),
        )

    def duration(
        self,
        value: object,
        granularity: str = "second",
        format: str = "long",
        add_direction: bool = False,
    ) -> str:
        """A timedelta or a number of seconds, rounded as people say it: ``1 Stunde`` (de)."""
        if isinstance(value, dt.timedelta):
            delta = value
        else:
            seconds = _number("duration", value)
            try:
                delta = dt.timedelta(seconds=float(seconds))
            except OverflowError:
                raise _fail("duration", value, "is too long a duration") from None
        unit = _choice("duration", granularity, _UNITS)
        style = _choice("duration", format, _DURATION_STYLES)
        return dates.format_timedelta(
            delta,
            granularity=unit,  # type: ignore[arg-type]  # Babel types it as a Literal
            format=style,  # type: ignore[arg-type]
            add_direction=bool(add_direction),
            locale=self.locale,
        )

    def plural(self, count: object, *forms: str, **by_category: str) -> str:
        """The form for ``count`` by the locale's CLDR plural rules, ``#`` replaced by the count.

        ``n | plural("# error", "# errors")`` (one, other, as ngettext), or by category:
        ``n | plural(one="# błąd", few="# błędy", many="# błędów", other="# błędu")``.
        """
        number = _number("plural", count)
        if len(forms) > 2 or (forms and by_category):
            raise InvalidInput("filter plural: give (one, other) or forms by category, not both")
        table = dict(zip(("one", "other"), forms, strict=False)) if forms else by_category
        unknown = sorted(set(table) - set(_PLURAL_CATEGORIES))
        if unknown:
            raise InvalidInput(f"filter plural: no plural category {unknown[0]!r}")
        category = self.locale.plural_form(number)
        form = table.get(category, table.get("other"))
        if not isinstance(form, str) or len(form) > _MAX_FORM:
            raise InvalidInput(f"filter plural: no form for {category!r} nor 'other'")
        return form.replace("#", numbers.format_decimal(number, locale=self.locale))
