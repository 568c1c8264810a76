"""Sample rows for any tenant-owned table, made from its SQLAlchemy columns.

The isolation suite inserts one row per tenant into every tenant table without knowing the
table. A table whose columns need particular values (a CHECK constraint, say) gives them in
``info={"sample_row": {...}}``; a column type this module does not know fails the suite with a
message saying so, rather than skipping the table.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    Interval,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, INET, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["insert_sample"]


def _value(column: Any) -> Any:
    kind = column.type
    token = uuid.uuid4().hex[:16]
    if isinstance(kind, Enum):
        return kind.enums[0]
    if isinstance(kind, (Text, String)):
        return f"s-{token}"
    if isinstance(kind, (SmallInteger,)):
        return random.randint(1, 30000)
    if isinstance(kind, (Integer, BigInteger)):
        return random.randint(1, 2**30)
    if isinstance(kind, Boolean):
        return True
    if isinstance(kind, (Float, Numeric)):
        return 1.5
    if isinstance(kind, DateTime):
        return dt.datetime.now(dt.UTC)
    if isinstance(kind, Date):
        return dt.date.today()
    if isinstance(kind, Interval):
        return dt.timedelta(seconds=1)
    if isinstance(kind, (JSONB, JSON)):
        return {"sample": token}
    if isinstance(kind, (LargeBinary, BYTEA)):
        return token.encode()
    if isinstance(kind, Uuid):
        return uuid.uuid4()
    if isinstance(kind, INET):
        return "192.0.2.1"
    if isinstance(kind, ARRAY):
        return []
    dim = getattr(kind, "dim", None)
    if type(kind).__name__ == "Vector" and dim:
        return [random.random() for _ in range(dim)]
    raise TypeError(
        f"tests/isolation/rows.py cannot make a value of {kind!r} for {column.table.name}."
        f"{column.name}: teach _value() this type, or give info['sample_row']"
    )


async def insert_sample(
    conn: AsyncConnection, table: Table, tenant_id: str, made: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Insert a row of ``table`` for ``tenant_id`` (and first the rows it references)."""
    if table.name in made:
        return made[table.name]
    row: dict[str, Any] = {"tenant_id": tenant_id}
    for fk in table.foreign_key_constraints:
        parent = fk.referred_table
        if parent.name == "tenants":
            continue
        parent_row = await insert_sample(conn, parent, tenant_id, made)
        for element in fk.elements:
            row[element.parent.name] = parent_row[element.column.name]
    row.update(table.info.get("sample_row", {}))
    for column in table.columns:
        if column.name in row:
            continue
        if column.identity is not None:
            row[column.name] = random.randint(1, 2**40)  # BY DEFAULT: an explicit id is allowed
            continue
        if column.server_default is not None or column.default is not None:
            continue
        if column.nullable and not column.primary_key:
            continue
        row[column.name] = _value(column)
    await conn.execute(table.insert().values(**row))
    made[table.name] = row
    return row
