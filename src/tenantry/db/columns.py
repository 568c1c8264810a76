"""Column shapes the domains' tables share."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, func

__all__ = ["timestamp"]


def timestamp(name: str, *, nullable: bool = False, default: bool = False) -> Column[object]:
    """A ``timestamptz`` column, ``now()`` by default when ``default``."""
    return Column(
        name,
        DateTime(timezone=True),
        nullable=nullable,
        server_default=func.now() if default else None,
    )
