"""The metadata benchmarks' data: templated records, real and derived embeddings, a bulk load.

Embedding 100,000 texts with multilingual-e5-small takes far too long for a benchmark run, so the
data is made this way (``benchmarks/README.md`` says the same):

- **Records.** Each of ``bases`` distinct records is a record of the labelled catalogue
  (``tests/metadata/catalogue``, picked at random) whose text fields are each, with probability
  one half, replaced by the same field of another catalogue record of the same schema; it gets a
  catalogue number (``TR-<tenant>-<n>``). Record ``n`` of a tenant is base ``n mod bases`` with
  the tenant's own catalogue number: the same kind of text as the catalogue, many records per
  template, as a label's catalogue has.
- **Vectors.** The ``bases`` distinct texts are embedded by the real encoder (``passage:``, as
  the embedder does), once: the vectors are cached in ``benchmarks/results/`` under a digest of
  the texts and the model. Record ``n < bases`` gets its base's vector; record ``n >= bases``
  gets ``MIX`` (0.75) of its base's vector plus 0.25 of another base's (chosen at random), plus
  isotropic Gaussian noise of norm ``NOISE`` (0.1), renormalised: a point near its own text's
  embedding, between real embeddings of the same catalogue, so that the records do not form
  clusters of near-copies (a first version, base plus noise only, made 100 near-ties per base,
  on which any approximate index finds a different 10 of the 100 than the exact search).
- **Rows.** Inserted with SQL in bulk (``INSERT ... SELECT FROM unnest(...)``, 5,000 rows a
  statement, as the owner): the record row (its ``search_text`` from ``searchable_text``, so
  ``search_tsv`` is the real generated column), and its version row (the content as
  ``codec.compress(codec.dump(...))``, as ``create_metadata`` writes it), with the embedding
  stored as current (``embedded_version = 1``). No audit entries. Then every tenant with at
  least ``MIN_RECORDS`` records gets its own search indexes, built by
  :meth:`~tenantry.metadata.SearchIndexes.ensure` as the service's keeper builds them.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
from numpy.typing import NDArray

from benchmarks.environment import RESULTS_DIR, Environment
from tenantry.metadata import SearchIndexes, codec
from tenantry.metadata.encoder import Encoder
from tenantry.metadata.language import text_config
from tenantry.metadata.manager import ID_PREFIX
from tenantry.metadata.models import EMBEDDING_PARTS
from tenantry.metadata.text import searchable_text
from tenantry.sessions.tokens import make_id
from tenantry.tenants import TenantRegistry
from tests.metadata.catalogue import Record, load_records

__all__ = ["MIX", "NOISE", "Corpus", "admin_dsn", "generate", "load_tenants", "real_vectors"]

NOISE = 0.1
MIX = 0.75
CHUNK = 5_000
_RECORDS = "tenantry.metadata_records"


@dataclass(frozen=True, slots=True)
class Generated:
    metadata_type: str
    schema_name: str
    language: str
    content: dict[str, Any]


def admin_dsn(env: Environment) -> str:
    """The admin URL for asyncpg (owner or superuser: row-level security does not apply)."""
    return env.admin_url.set(drivername="postgresql").render_as_string(hide_password=False)


def generate(bases: int, seed: int = 14) -> list[Generated]:
    """``bases`` distinct records templated from the catalogue (see the module docstring)."""
    rng = random.Random(seed)
    catalogue = load_records()
    by_schema: dict[str, list[Record]] = {}
    for record in catalogue:
        by_schema.setdefault(record.schema_name, []).append(record)
    made = []
    for _ in range(bases):
        template = rng.choice(catalogue)
        content = dict(template.content)
        for key, value in template.content.items():
            if isinstance(value, str) and rng.random() < 0.5:
                other = rng.choice(by_schema[template.schema_name]).content.get(key)
                if isinstance(other, str):
                    content[key] = other
        made.append(
            Generated(
                template.metadata_type.lower(), template.schema_name, template.language, content
            )
        )
    return made


def _numbered(base: Generated, tenant: int, n: int) -> Generated:
    return Generated(
        base.metadata_type,
        base.schema_name,
        base.language,
        {**base.content, "catalogue_number": f"TR-{tenant:02d}-{n:06d}"},
    )


def real_vectors(encoder: Encoder, bases: Sequence[Generated]) -> NDArray[np.float32]:
    """The encoder's passage vectors of the bases' texts, cached on disk by digest."""
    texts = [searchable_text(b.content, b.schema_name) for b in bases]
    digest = hashlib.sha256("\n".join([encoder.name, *texts]).encode()).hexdigest()[:16]
    path = RESULTS_DIR / f"metadata-vectors-{len(texts)}-{digest}.npy"
    if path.exists():
        cached: NDArray[np.float32] = np.load(path)
        return cached
    vectors = encoder.encode_passages(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def derived(
    vectors: NDArray[np.float32], base: int, rng: np.random.Generator
) -> NDArray[np.float32]:
    """A row near ``vectors[base]``: in each encoder's part (``EMBEDDING_PARTS``), MIX of the
    base's part, the rest another base's, plus noise of norm NOISE, made unit length again."""
    other = vectors[int(rng.integers(len(vectors)))]
    row = np.empty(vectors.shape[1], np.float32)
    for start, stop in EMBEDDING_PARTS:
        noise = rng.standard_normal(stop - start).astype(np.float32)
        part = (
            MIX * vectors[base, start:stop]
            + (1 - MIX) * other[start:stop]
            + noise * np.float32(NOISE / float(np.linalg.norm(noise)))
        )
        row[start:stop] = part / np.linalg.norm(part)
    return row


@dataclass(slots=True)
class Corpus:
    """What was loaded: per tenant, its record ids and their vectors (as stored, for the exact
    search); the seconds each step took."""

    tenants: list[str]
    ids: dict[str, list[str]]
    vectors: dict[str, NDArray[np.float32]]
    seconds: dict[str, float]

    def exact(
        self, tenant: str, query: NDArray[np.float32], part: int = 0, k: int = 10
    ) -> list[str]:
        """The ids of ``tenant``'s ``k`` records whose ``part`` is nearest ``query`` (that
        part of a query row; cosine: each part is a unit vector)."""
        start, stop = EMBEDDING_PARTS[part]
        cosines = self.vectors[tenant][:, start:stop] @ query
        top = np.argsort(-cosines, kind="stable")[:k]
        return [self.ids[tenant][i] for i in top]


async def _register_schemas(conn: asyncpg.Connection, tenant: str, names: set[str]) -> None:
    for name in sorted(names):
        await conn.execute(
            "INSERT INTO tenantry.metadata_schema_subjects (tenant_id, name, compatibility, latest)"
            " VALUES ($1, $2, 'NONE', 1)",
            tenant,
            name,
        )
        await conn.execute(
            "INSERT INTO tenantry.metadata_schemas (tenant_id, name, version, schema, "
            "compatibility) VALUES ($1, $2, 1, '{}'::jsonb, 'NONE')",
            tenant,
            name,
        )


async def _insert(
    conn: asyncpg.Connection,
    tenant: str,
    rows: Sequence[tuple[Generated, NDArray[np.float32]]],
    pgvector: bool,
    model: str,
) -> list[str]:
    ids = [make_id(ID_PREFIX, tenant) for _ in rows]
    body = ",".join(["%.7g"] * (rows[0][1].shape[0] if rows else 0))
    literal = f"[{body}]" if pgvector else f"{{{body}}}"
    vectors = [literal % tuple(v.tolist()) for _, v in rows]
    payloads = [codec.compress(codec.dump(g.content)) for g, _ in rows]
    await conn.execute(
        f"INSERT INTO {_RECORDS} (tenant_id, id, metadata_type, schema_name, schema_version, "
        "version, language, text_config, fields, search_text, embedding, embedding_model, "
        "embedded_version) SELECT $1, u.id, u.kind, u.schema, 1, 1, u.lang, u.cfg::regconfig, "
        f"u.fields::jsonb, u.search, u.vec::{'vector' if pgvector else 'real[]'}, $2, 1 FROM "
        "unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], "
        "$9::text[], $10::text[]) AS u(id, kind, schema, lang, cfg, fields, search, vec)",
        tenant,
        model,
        ids,
        [g.metadata_type for g, _ in rows],
        [g.schema_name for g, _ in rows],
        [g.language for g, _ in rows],
        [text_config(g.language) for g, _ in rows],
        [codec.dump(codec.projection(g.content)).decode() for g, _ in rows],
        [searchable_text(g.content, g.schema_name) for g, _ in rows],
        vectors,
    )
    await conn.execute(
        "INSERT INTO tenantry.metadata_versions (tenant_id, record_id, version, metadata_type, "
        "schema_name, schema_version, encoding, payload, change) SELECT $1, u.id, 1, u.kind, "
        "u.schema, 1, u.enc, u.payload, 'create' FROM unnest($2::text[], $3::text[], $4::text[], "
        "$5::smallint[], $6::bytea[]) AS u(id, kind, schema, enc, payload)",
        tenant,
        ids,
        [g.metadata_type for g, _ in rows],
        [g.schema_name for g, _ in rows],
        [codec.PUBLIC_COMPRESSED if packed else 0 for _, packed in payloads],
        [payload for payload, _ in payloads],
    )
    return ids


async def load_tenants(
    env: Environment,
    encoder: Encoder,
    counts: Sequence[int],
    bases: int,
    *,
    pgvector: bool,
    prefix: str = "bench-md",
) -> Corpus:
    """Tenants ``<prefix>-0``... with ``counts[i]`` records each, loaded in bulk."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    templates = generate(bases)
    vectors = real_vectors(encoder, templates)
    seconds["embed"] = time.perf_counter() - started
    rng = np.random.default_rng(14)
    tenants = [f"{prefix}-{i}" for i in range(len(counts))]
    registry = TenantRegistry(env.db)
    for tenant in tenants:
        await registry.create(tenant, tenant)
    schemas = {t.schema_name for t in templates}
    ids: dict[str, list[str]] = {}
    stored: dict[str, NDArray[np.float32]] = {}
    started = time.perf_counter()
    conn = await asyncpg.connect(admin_dsn(env))
    try:
        for number, (tenant, count) in enumerate(zip(tenants, counts, strict=True)):
            await _register_schemas(conn, tenant, schemas)
            ids[tenant], stored[tenant] = [], np.empty((count, vectors.shape[1]), np.float32)
            for start in range(0, count, CHUNK):
                rows = []
                for n in range(start, min(count, start + CHUNK)):
                    base = n % bases
                    vector = vectors[base] if n < bases else derived(vectors, base, rng)
                    rows.append((_numbered(templates[base], number, n), vector))
                    stored[tenant][n] = vector
                async with conn.transaction():
                    ids[tenant] += await _insert(conn, tenant, rows, pgvector, encoder.name)
        seconds["insert"] = time.perf_counter() - started
        started = time.perf_counter()
        indexes = SearchIndexes(env.db, runtime=env.runtime, maintenance_work_mem="1GB")
        for tenant, count in zip(tenants, counts, strict=True):
            if count >= indexes.min_records:
                await indexes.ensure(tenant)
        await conn.execute(f"VACUUM ANALYZE {_RECORDS}")
        await conn.execute("VACUUM ANALYZE tenantry.metadata_versions")
        seconds["index"] = time.perf_counter() - started
    finally:
        await conn.close()
    return Corpus(tenants, ids, stored, seconds)
