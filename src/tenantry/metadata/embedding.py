"""The embedding queue: records whose current version has no vector yet, embedded in batches.

A write makes its record due (``embedded_version`` differs from ``version``) in its own
transaction, so nothing is lost between a write and its embedding, whichever process wrote it.
The :class:`Embedder` is a round over tenants (:mod:`tenantry.rounds`): a write in this process
notices its tenant, and every ``sweep_every`` rounds every active tenant is noticed, which picks
up other processes' writes and a restart's backlog. A visit takes a batch of due records in one
short transaction, encodes them off the event loop (``asyncio.to_thread``) with no transaction
open, and stores the vectors of those whose version has not moved on in another.

So a record is found by text as soon as its write commits, and by meaning one round later
(``interval``, 0.2 s by default, plus the encoding of its batch) when this process wrote it, or
within ``interval * sweep_every`` (5 minutes by default) when another process did and does not run
an embedder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.db.engine import Database
from tenantry.db.repository import TenantRepository
from tenantry.metadata.encoder import Encoder
from tenantry.metadata.search import VectorStore
from tenantry.tenants.rounds import ActiveTenantRounds

__all__ = ["EmbedStep", "Embedder"]


@dataclass(frozen=True, slots=True)
class EmbedStep:
    """One visit: how many records were taken and stored, and whether more are due."""

    tenant_id: str
    taken: int = 0
    stored: int = 0
    more: bool = False


class Embedder(ActiveTenantRounds[EmbedStep]):
    """Embeds due records, tenant by tenant; see the module docstring."""

    work = "metadata embedding"

    def __init__(
        self,
        database: Database | None = None,
        *,
        encoder: Callable[[], Awaitable[Encoder]],
        store: Callable[[], Awaitable[VectorStore]],
        interval: float = 0.2,
        batch: int = 64,
        sweep_every: int = 1500,
    ) -> None:
        if batch < 1 or sweep_every < 1:
            raise ValueError("batch and sweep_every must be >= 1")
        self._database = database
        self._encoder, self._store = encoder, store
        super().__init__(interval=interval)
        self.batch, self.sweep_every = batch, sweep_every

    async def visit(self, tenant_id: str) -> EmbedStep:
        return await self.embed(tenant_id)

    def again(self, result: EmbedStep) -> bool:
        return result.more

    async def embed(self, tenant_id: str) -> EmbedStep:
        """Embed one batch of ``tenant_id``'s due records."""
        validate_tenant_id(tenant_id)
        db, store = await self._db(), await self._store()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                due = await store.due(TenantRepository(conn), self.batch)
            if not due:
                return EmbedStep(tenant_id)
            encoder = await self._encoder()
            texts = [text for _, _, text in due if text]
            vectors = iter(await asyncio.to_thread(encoder.encode_passages, texts) if texts else [])
            items = [(i, v, next(vectors) if text else None) for i, v, text in due]
            async with db.tenant_transaction() as conn:
                stored = await store.store(TenantRepository(conn), items, encoder.name)
        return EmbedStep(tenant_id, taken=len(due), stored=stored, more=len(due) == self.batch)

    async def embed_all(self, tenant_id: str) -> int:
        """Embed every due record of ``tenant_id`` now; how many were stored."""
        stored = 0
        while True:
            step = await self.embed(tenant_id)
            stored += step.stored
            if not step.more:
                return stored
