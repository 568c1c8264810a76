"""Small input checks the managers share."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from tenantry.errors import InvalidInput

__all__ = ["parse_enum"]

_E = TypeVar("_E", bound=StrEnum)


def parse_enum(kind: type[_E], value: str | _E) -> _E:
    """``kind(value)``, or :class:`InvalidInput` naming the values ``kind`` accepts."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        shown = InvalidInput.excerpt(value)
        raise InvalidInput(f"invalid {kind.__name__} {shown}: use one of {allowed}") from None
