"""SQL of the audit log, on a tenant transaction (PostgreSQL scopes every statement to the tenant).

Appends are serialized per tenant by ``pg_advisory_xact_lock(AUDIT_LOCK, hashtext(tenant))``
(:func:`lock_statement`), sent in the transaction's opening message, so that every later
statement (READ COMMITTED: a fresh snapshot each) sees every append committed before the lock
was granted. The tree's size is ``max(idx) + 1`` of the level-0 nodes; its frontier (the
complete subtrees of ``[0, size)``, one per set bit of ``size``) is O(log n) index probes.

:meth:`AuditRepository.append` is one statement: it reads the size and frontier, and writes the
entries and the nodes they complete only if they extend exactly that state; otherwise it writes
nothing and returns the state found, to compute the batch again. So the caller may compute a
batch from the state it last wrote (a hint, never trusted) instead of reading it first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import text

from tenantry.audit.models import audit_checkpoints, audit_entries, audit_nodes
from tenantry.context import validate_tenant_id
from tenantry.db.engine import translate_error
from tenantry.db.pool import driver_connection
from tenantry.db.repository import TenantRepository
from tenantry.errors import NotFound

__all__ = ["AUDIT_LOCK", "AppendBatch", "AuditRepository", "TreeState", "lock_statement"]

#: The first key of the per-tenant advisory lock (the second is ``hashtext(tenant_id)``).
AUDIT_LOCK = 0x61756474  # "audt"

#: (size, frontier hashes from the largest subtree down).
TreeState = tuple[int, list[bytes]]

_E = f'"{audit_entries.schema}"."{audit_entries.name}"'
_N = f'"{audit_nodes.schema}"."{audit_nodes.name}"'
_C = f'"{audit_checkpoints.schema}"."{audit_checkpoints.name}"'


def _size_sql(tenant: str) -> str:
    return (
        f"SELECT coalesce(max(idx) + 1, 0) AS n FROM {_N} WHERE tenant_id = {tenant} AND level = 0"
    )


def _state_sql(tenant: str) -> str:
    """The frontier of a tree of size c.n: one index probe on (tenant_id, level, idx) per set bit
    of c.n. ``tenant`` is the parameter of the tenant (RLS filters as well: it names the shard)."""
    return (
        "SELECT c.n, ARRAY(SELECT (SELECT nd.hash FROM"
        f" {_N} nd WHERE nd.tenant_id = {tenant} AND nd.level = g.l AND nd.idx = (c.n >> g.l) - 1)"
        " FROM generate_series(62, 0, -1) g(l) WHERE (c.n >> g.l) & 1 = 1 ORDER BY g.l DESC)"
        f" AS f FROM ({_size_sql(tenant)}) c"
    )


_SIZE = text(_size_sql(":t"))
_STATE = text(_state_sql(":t"))
# $1, $2: the state the batch extends; $3: tenant; $4, $5: leaf hashes and entries (sequence
# numbers from $1 on; the leaves are the level-0 nodes too); $6-$8: the inner nodes. The inserts
# happen only when the state found is that one; the state found is returned either way.
_APPEND = (
    f"WITH s AS ({_state_sql('$3')}), ok AS (SELECT s.n = $1 AND s.f = $2::bytea[] AS ok FROM s),"
    f" e AS (INSERT INTO {_E} (tenant_id, seq, leaf_hash, entry)"
    " SELECT $3, $1 + u.o - 1, u.l, u.d FROM unnest($4::bytea[], $5::bytea[])"
    " WITH ORDINALITY u(l, d, o) WHERE (SELECT ok FROM ok)),"
    f" w AS (INSERT INTO {_N} (tenant_id, level, idx, hash)"
    " SELECT $3, 0, $1 + u.o - 1, u.l FROM unnest($4::bytea[]) WITH ORDINALITY u(l, o)"
    " WHERE (SELECT ok FROM ok) UNION ALL"
    " SELECT $3, u.* FROM unnest($6::smallint[], $7::bigint[], $8::bytea[]) u"
    " WHERE (SELECT ok FROM ok))"
    " SELECT ok.ok, s.n, CASE WHEN ok.ok THEN NULL ELSE s.f END FROM ok, s"
)
_NODES = text(
    f"SELECT level, idx, hash FROM {_N} WHERE (level, idx) IN"
    " (SELECT * FROM unnest(CAST(:levels AS smallint[]), CAST(:idxs AS bigint[])))"
)
_PAGE = text(
    f"SELECT seq, leaf_hash, entry, recorded_at FROM {_E}"
    " WHERE seq >= :start ORDER BY seq LIMIT :limit"
)
_EXPORT = text(
    f"SELECT n.idx, n.hash, e.seq, e.leaf_hash, e.entry FROM"
    f" (SELECT tenant_id, idx, hash FROM {_N} WHERE level = 0) n FULL JOIN {_E} e"
    " ON e.tenant_id = n.tenant_id AND e.seq = n.idx"
    " ORDER BY coalesce(n.idx, e.seq), e.seq"
)
_ADD_CHECKPOINT = text(
    f"INSERT INTO {_C} (tenant_id, tree_size, root_hash, note) VALUES (:t, :size, :root, :note)"
    " ON CONFLICT DO NOTHING"
)
_CHECKPOINT = text(f"SELECT tree_size, root_hash, note FROM {_C} WHERE tree_size = :size")
_CHECKPOINTS = text(f"SELECT tree_size, root_hash, note FROM {_C} ORDER BY tree_size")


def lock_statement(tenant_id: str) -> str:
    """The statement that serializes appends to ``tenant_id``'s tree until the transaction ends.

    A literal, for the transaction's opening message (simple protocol, no parameters): only ids
    that match the tenant-id pattern get here, and quotes are doubled regardless.
    """
    literal = "'" + validate_tenant_id(tenant_id).replace("'", "''") + "'"
    return f"SELECT pg_advisory_xact_lock({AUDIT_LOCK}, hashtext({literal}))"


@dataclass(frozen=True, slots=True)
class AppendBatch:
    """Entries on top of tree state ``base``: their leaf hashes, stored bytes, and inner nodes."""

    base: TreeState
    leaves: list[bytes]
    entries: list[bytes]
    levels: list[int]
    idxs: list[int]
    hashes: list[bytes]
    after: TreeState

    @property
    def seqs(self) -> list[int]:
        return list(range(self.base[0], self.base[0] + len(self.leaves)))


def _state(size: Any, frontier: Any) -> TreeState:
    hashes = list(frontier)
    if any(h is None for h in hashes):
        raise NotFound(f"a frontier node of the tree of size {size} is missing: it is damaged")
    return int(size), hashes


class AuditRepository(TenantRepository):
    """Reads and appends of one tenant's audit tree."""

    _driver: Any = None  # the asyncpg connection under ``conn``, once :meth:`append` needed it

    async def state(self) -> TreeState:
        """(size, frontier hashes from the largest subtree down)."""
        row = (await self.conn.execute(_STATE, {"t": self.tenant_id})).one()
        return _state(row[0], row[1])

    async def size(self) -> int:
        return int((await self.conn.execute(_SIZE, {"t": self.tenant_id})).scalar_one())

    async def append(self, batch: AppendBatch) -> TreeState | None:
        """Write ``batch`` if the tree is at ``batch.base``; else write nothing, return its state.

        One statement, sent straight to asyncpg (a prepared statement it caches; the hot path
        of the audit log): under the tenant's lock, nothing can change the state in between.
        """
        if self._driver is None:
            self._driver = driver_connection(self.conn)
        size, frontier = batch.base
        try:
            row = await self._driver.fetchrow(
                _APPEND,
                size,
                frontier,
                self.tenant_id,
                batch.leaves,
                batch.entries,
                batch.levels,
                batch.idxs,
                batch.hashes,
            )
        except asyncpg.PostgresError as exc:
            raise translate_error(exc) from exc
        if row[0]:
            return None
        return _state(row[1], row[2])

    async def nodes(self, wanted: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored hashes of the complete subtrees ``wanted`` (missing ones are absent)."""
        if not wanted:
            return {}
        params = {"levels": [w[0] for w in wanted], "idxs": [w[1] for w in wanted]}
        rows = (await self.conn.execute(_NODES, params)).all()
        return {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}

    async def page(self, start: int, limit: int) -> list[tuple[int, bytes, bytes | None, datetime]]:
        rows = (await self.conn.execute(_PAGE, {"start": start, "limit": limit})).all()
        return [(int(r[0]), bytes(r[1]), r[2], r[3]) for r in rows]

    async def export_rows(self) -> list[tuple[Any, ...]]:
        """(node idx, node hash, entry seq, entry leaf hash, entry bytes), by position."""
        return [tuple(r) for r in (await self.conn.execute(_EXPORT)).all()]

    async def add_checkpoint(self, size: int, root: bytes, note: str) -> tuple[int, bytes, str]:
        """Store a checkpoint; an existing one of the same size wins (and is returned)."""
        params = {"t": self.tenant_id, "size": size, "root": root, "note": note}
        await self.conn.execute(_ADD_CHECKPOINT, params)
        row = (await self.conn.execute(_CHECKPOINT, {"size": size})).one()
        return int(row[0]), bytes(row[1]), str(row[2])

    async def checkpoints(self) -> list[tuple[int, bytes, str]]:
        rows = (await self.conn.execute(_CHECKPOINTS)).all()
        return [(int(r[0]), bytes(r[1]), str(r[2])) for r in rows]
