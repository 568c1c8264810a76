"""Durations as Prometheus and Alertmanager write them: ``30s``, ``5m``, ``1h30m``, ``250ms``.

A duration is one or more ``<integer><unit>`` parts, units from the largest to the smallest, each
at most once (``1h30m``, not ``30m1h``): ``y`` (365 days), ``w``, ``d``, ``h``, ``m``, ``s``,
``ms``. ``0`` alone is zero. The result is a :class:`~datetime.timedelta`; anything else is
:class:`~tenantry.errors.InvalidInput`.
"""

from __future__ import annotations

import re
from datetime import timedelta

from tenantry.errors import InvalidInput

__all__ = ["MAX_DURATION", "format_duration", "parse_duration"]

#: The longest duration accepted anywhere in rules and routes (ten years).
MAX_DURATION = timedelta(days=3650)

_UNITS: tuple[tuple[str, timedelta], ...] = (
    ("y", timedelta(days=365)),
    ("w", timedelta(weeks=1)),
    ("d", timedelta(days=1)),
    ("h", timedelta(hours=1)),
    ("m", timedelta(minutes=1)),
    ("s", timedelta(seconds=1)),
    ("ms", timedelta(milliseconds=1)),
)
_PATTERN = re.compile(
    r"(?:(?P<y>[0-9]{1,6})y)?(?:(?P<w>[0-9]{1,6})w)?(?:(?P<d>[0-9]{1,6})d)?"
    r"(?:(?P<h>[0-9]{1,7})h)?(?:(?P<m>[0-9]{1,9})m)?(?:(?P<s>[0-9]{1,10})s)?"
    r"(?:(?P<ms>[0-9]{1,12})ms)?",
    re.ASCII,
)


def parse_duration(text: str) -> timedelta:
    """``text`` (``"1h30m"``) as a timedelta, or :class:`InvalidInput` saying why not."""
    if not isinstance(text, str):
        raise InvalidInput(f"a duration is a string such as '5m', not {InvalidInput.excerpt(text)}")
    if text == "0":
        return timedelta(0)
    match = _PATTERN.fullmatch(text)
    if not text or match is None:
        raise InvalidInput(
            f"invalid duration {InvalidInput.excerpt(text)}: write it as '30s', '5m', '1h30m' "
            "(units y, w, d, h, m, s, ms, largest first)"
        )
    total = timedelta(0)
    for unit, size in _UNITS:
        part = match.group(unit)
        if part is not None:
            total += int(part) * size
            if total > MAX_DURATION:
                break
    if total > MAX_DURATION:
        raise InvalidInput(f"duration {InvalidInput.excerpt(text)} is longer than ten years")
    return total


def format_duration(value: timedelta) -> str:
    """The shortest ``parse_duration`` spelling of a non-negative ``value`` (``1h30m``)."""
    if value < timedelta(0):
        raise InvalidInput(f"a duration cannot be negative: {value}")
    remaining = value // timedelta(milliseconds=1)
    if remaining == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in _UNITS:
        count, remaining = divmod(remaining, size // timedelta(milliseconds=1))
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
