"""SQL of the audit log, on a tenant transaction (PostgreSQL scopes every statement to the tenant).

Appends are serialized per tenant by ``pg_advisory_xact_lock(AUDIT_LOCK, hashtext(tenant))``,
taken in its own statement so that the next statement (READ COMMITTED: a fresh snapshot) sees
every append committed before the lock was granted. The tree's size is ``max(idx) + 1`` of the
level-0 nodes; the frontier (the complete subtrees of ``[0, size)``, one per set bit of
``size``) is read in the same statement. Entries and nodes are then written in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text

from tenantry.db.repository import TenantRepository
from tenantry.security.models import audit_checkpoints, audit_entries, audit_nodes

__all__ = ["AUDIT_LOCK", "AuditRepository"]

#: The first key of the per-tenant advisory lock (the second is ``hashtext(tenant_id)``).
AUDIT_LOCK = 0x61756474  # "audt"

_E = f'"{audit_entries.schema}"."{audit_entries.name}"'
_N = f'"{audit_nodes.schema}"."{audit_nodes.name}"'
_C = f'"{audit_checkpoints.schema}"."{audit_checkpoints.name}"'

_LOCK = text(f"SELECT pg_advisory_xact_lock({AUDIT_LOCK}, hashtext(:t))")
_SIZE_SQL = f"SELECT coalesce(max(idx) + 1, 0) AS n FROM {_N} WHERE level = 0"
_SIZE = f"({_SIZE_SQL})"
_STATE = text(
    f"SELECT s.n, ARRAY(SELECT nd.hash FROM generate_series(62, 0, -1) g(l)"
    f" JOIN {_N} nd ON nd.level = g.l AND nd.idx = (s.n >> g.l) - 1"
    f" WHERE (s.n >> g.l) & 1 = 1 ORDER BY g.l DESC) FROM {_SIZE} s"
)
_WRITE = text(
    f"WITH e AS (INSERT INTO {_E} (tenant_id, seq, leaf_hash, entry)"
    " SELECT :t, * FROM unnest(CAST(:seqs AS bigint[]), CAST(:leaves AS bytea[]),"
    " CAST(:entries AS bytea[])))"
    f" INSERT INTO {_N} (tenant_id, level, idx, hash)"
    " SELECT :t, * FROM unnest(CAST(:levels AS smallint[]), CAST(:idxs AS bigint[]),"
    " CAST(:hashes AS bytea[]))"
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
    f" (SELECT idx, hash FROM {_N} WHERE level = 0) n FULL JOIN {_E} e ON e.seq = n.idx"
    " ORDER BY coalesce(n.idx, e.seq), e.seq"
)
_ADD_CHECKPOINT = text(
    f"INSERT INTO {_C} (tenant_id, tree_size, root_hash, note) VALUES (:t, :size, :root, :note)"
    " ON CONFLICT DO NOTHING"
)
_CHECKPOINT = text(f"SELECT tree_size, root_hash, note FROM {_C} WHERE tree_size = :size")
_CHECKPOINTS = text(f"SELECT tree_size, root_hash, note FROM {_C} ORDER BY tree_size")


class AuditRepository(TenantRepository):
    """Reads and appends of one tenant's audit tree."""

    async def lock(self) -> None:
        """Serialize appends to this tenant's tree until the transaction ends."""
        await self.conn.execute(_LOCK, {"t": self.tenant_id})

    async def state(self) -> tuple[int, list[bytes]]:
        """(size, frontier hashes from the largest subtree down)."""
        row = (await self.conn.execute(_STATE)).one()
        return int(row[0]), list(row[1])

    async def size(self) -> int:
        return int((await self.conn.execute(text(_SIZE_SQL))).scalar_one())

    async def write(
        self,
        seqs: list[int],
        leaves: list[bytes],
        entries: list[bytes],
        nodes: list[tuple[int, int, bytes]],
    ) -> None:
        """Insert entries and the nodes they complete (leaves included), in one statement."""
        await self.conn.execute(
            _WRITE,
            {
                "t": self.tenant_id,
                "seqs": seqs,
                "leaves": leaves,
                "entries": entries,
                "levels": [n[0] for n in nodes],
                "idxs": [n[1] for n in nodes],
                "hashes": [n[2] for n in nodes],
            },
        )

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
