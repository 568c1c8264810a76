"""What an export reads: every tenant table, found as the isolation suite finds them, and how
each column becomes JSON.

The tables are those of the catalog with a ``tenant_id`` column
(:func:`~tenantry.db.inspect.read_tenant_tables`), compared with those declared with
:func:`~tenantry.db.rls.tenant_table`: a declared table the database lacks means a database
behind the code (:class:`ConfigError`), a table that does not keep the isolation invariants is
refused (:class:`ConfigError`: its rows could be another tenant's), and a table of the catalog
that no code declares is exported as well, read from the catalog (never skipped). Columns come
from the catalog too, so a new table or column is exported without new code.

A declared table may name columns an export leaves out, ``info={"export_redacted": (...)}``
(written as null): the tenant keys' wrapped key material, which would be a copy that outlives
crypto-shredding.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.db.bootstrap import quote_ident
from tenantry.db.inspect import read_tenant_tables
from tenantry.db.metadata import SCHEMA
from tenantry.db.rls import tenant_tables
from tenantry.errors import ConfigError

__all__ = [
    "ENCODING",
    "REDACTED_INFO",
    "ExportColumn",
    "ExportTable",
    "discover",
    "json_line",
    "to_json",
]

#: The ``Table.info`` key naming the columns an export writes as null.
REDACTED_INFO: Final = "export_redacted"
#: How values are written (recorded in every manifest).
ENCODING: Final = {
    "bytea": "base64 (standard alphabet, padded)",
    "timestamp, date, time": "ISO 8601",
    "interval": "ISO 8601 duration in seconds (PT<seconds>S)",
    "uuid": "string",
    "numeric": "string",
    "json, jsonb": "the JSON value",
    "vector": "array of numbers",
    "arrays": "arrays",
    "other types": "PostgreSQL's text form",
    "sealed columns": (
        "as stored: tenantry ciphertexts (base64) that open with the tenant's keys, for the "
        "column's purpose and record"
    ),
}
#: Types asyncpg decodes into values :func:`to_json` knows (and arrays of them).
_NATIVE: Final = frozenset(
    {
        "bool",
        "int2",
        "int4",
        "int8",
        "float4",
        "float8",
        "numeric",
        "text",
        "varchar",
        "bpchar",
        "name",
        "bytea",
        "timestamptz",
        "timestamp",
        "date",
        "time",
        "interval",
        "uuid",
    }
)
_COLUMNS = text(
    """
    select c.relname as table_name, a.attname as name,
           format_type(a.atttypid, a.atttypmod) as type, t.typname, et.typname as element,
           array_position(i.indkey::int2[], a.attnum) as key_position
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    join pg_type t on t.oid = a.atttypid
    left join pg_type et on et.oid = t.typelem and t.typcategory = 'A'
    left join pg_index i on i.indrelid = c.oid and i.indisprimary
    where n.nspname = :schema and c.relname = any(:tables) and a.attgenerated = ''
    order by c.relname, a.attnum
    """
)


@dataclass(frozen=True, slots=True)
class ExportColumn:
    name: str
    #: The column's type in the database (``format_type``).
    type: str
    #: The SQL that reads it (a cast for types the driver does not decode into JSON-able values).
    select: str
    #: Read as text holding JSON (json, jsonb).
    json: bool = False


@dataclass(frozen=True, slots=True)
class ExportTable:
    name: str
    columns: tuple[ExportColumn, ...]
    #: The primary key's columns, in order (``tenant_id`` first): the keyset of the pages.
    key: tuple[str, ...]
    #: Declared with ``tenant_table`` (False: found in the catalog only).
    declared: bool
    redacted: frozenset[str]

    def page(self, *, after: bool) -> str:
        """The SQL of a page of rows in key order (``:limit``; ``:k0``... the last key read)."""
        columns = ", ".join(f"{c.select} as {quote_ident(c.name)}" for c in self.columns)
        key = ", ".join(quote_ident(k) for k in self.key)
        where = ""
        if after:
            where = f" where ({key}) > ({', '.join(f':k{i}' for i in range(len(self.key)))})"
        qualified = f"{quote_ident(SCHEMA)}.{quote_ident(self.name)}"
        return f"select {columns} from {qualified}{where} order by {key} limit :limit"

    def manifest_columns(self) -> list[dict[str, Any]]:
        return [
            {
                "name": c.name,
                "type": c.type,
                **({"redacted": True} if c.name in self.redacted else {}),
            }
            for c in self.columns
        ]


async def discover(conn: AsyncConnection) -> list[ExportTable]:
    """Every tenant table to export (declared ones in dependency order, then the catalog's
    others by name); :class:`ConfigError` as the module docstring says."""
    facts = {f.name: f for f in await read_tenant_tables(conn)}
    declared = {t.name: t for t in tenant_tables()}
    if missing := sorted(set(declared) - set(facts)):
        raise ConfigError(
            f"the database lacks the tenant tables {missing}: migrate it (tenantry migrate)"
        )
    broken = {name: f.problems() for name, f in facts.items() if f.problems()}
    if broken:
        raise ConfigError(f"tenant tables that do not keep the isolation invariants: {broken}")
    order = list(declared) + sorted(set(facts) - set(declared))
    rows = (await conn.execute(_COLUMNS, {"schema": SCHEMA, "tables": order})).all()
    found: dict[str, list[Any]] = {}
    for row in rows:
        found.setdefault(row.table_name, []).append(row)
    tables = []
    for name in order:
        table = declared.get(name)
        redacted = frozenset(table.info.get(REDACTED_INFO, ()) if table is not None else ())
        columns = found[name]
        key = tuple(r.name for r in sorted(columns, key=_position) if r.key_position is not None)
        tables.append(
            ExportTable(
                name,
                tuple(_column(r, r.name in redacted) for r in columns),
                key,
                declared=table is not None,
                redacted=redacted,
            )
        )
    return tables


def _position(row: Any) -> int:
    return int(row.key_position or 0)


def _column(row: Any, redacted: bool) -> ExportColumn:
    name, typname = quote_ident(row.name), row.typname
    if redacted:
        return ExportColumn(row.name, row.type, "null")
    if typname in ("json", "jsonb"):
        return ExportColumn(row.name, row.type, f"{name}::text", json=True)
    if typname == "vector":
        return ExportColumn(row.name, row.type, f"{name}::real[]")
    if typname in _NATIVE or (row.element is not None and row.element in _NATIVE):
        return ExportColumn(row.name, row.type, name)
    return ExportColumn(row.name, row.type, f"{name}::text")


def _float(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)  # NaN and infinities as text


def _duration(value: dt.timedelta) -> str:
    seconds = value.total_seconds()
    return f"PT{int(seconds) if seconds.is_integer() else seconds}S"


def _list(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [to_json(v) for v in value]


_CONVERT: Final[tuple[tuple[type | tuple[type, ...], Callable[[Any], Any]], ...]] = (
    (float, _float),
    (bytes, lambda v: base64.b64encode(v).decode("ascii")),
    ((dt.datetime, dt.date, dt.time), lambda v: v.isoformat()),
    (dt.timedelta, _duration),
    ((uuid.UUID, Decimal), str),
    ((list, tuple), _list),
)


def to_json(value: Any) -> Any:
    """``value`` as read by the driver, as a JSON value (see :data:`ENCODING`)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    for kinds, convert in _CONVERT:
        if isinstance(value, kinds):
            return convert(value)
    return str(value)


def json_line(table: ExportTable, row: Any) -> bytes:
    """One row of ``table`` as a line of JSON (with its newline)."""
    values = {}
    for column, value in zip(table.columns, row, strict=True):
        if column.json and value is not None:
            values[column.name] = json.loads(value)
        else:
            values[column.name] = to_json(value)
    return (json.dumps(values, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
