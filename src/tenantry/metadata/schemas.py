"""Input and output shapes of the metadata domain: records, versions, searches and their hits;
the schema registry's subjects, versions, compatibility modes and reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

__all__ = [
    "SCHEMA_NAME_PATTERN",
    "CompatibilityCheck",
    "CompatibilityMode",
    "CompatibilityReport",
    "CompatibilityUpdate",
    "FieldValue",
    "MetadataCreate",
    "MetadataPage",
    "MetadataRecord",
    "MetadataRollback",
    "MetadataSearch",
    "MetadataSearchBody",
    "MetadataType",
    "MetadataUpdate",
    "MetadataVersion",
    "SchemaRegistration",
    "SchemaSubject",
    "SchemaVersion",
    "SearchHit",
    "UpgradeStep",
]

#: A value a list filter compares a top-level content field with.
FieldValue = str | int | float | bool


class MetadataType(StrEnum):
    """What a record describes (the documents' three kinds)."""

    SCHEMA = "schema"
    BUSINESS = "business"
    TECHNICAL = "technical"


@dataclass(frozen=True, slots=True)
class MetadataRecord:
    """A record at one version: its content (sensitive fields decrypted) and what it names."""

    id: str
    tenant_id: str
    metadata_type: MetadataType
    version: int
    content: dict[str, Any]
    schema_name: str | None
    schema_version: int | None
    language: str | None
    sensitive_fields: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    updated_by: str | None
    #: Whether the record's current version can be found by meaning (its embedding is stored);
    #: a new or changed record is found by text at once and by meaning once the embedder ran.
    embedded: bool


@dataclass(frozen=True, slots=True)
class MetadataVersion:
    """One immutable version of a record: the change that wrote it and the content it holds."""

    record_id: str
    version: int
    change: str
    metadata_type: MetadataType
    content: dict[str, Any]
    schema_name: str | None
    schema_version: int | None
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True, slots=True)
class MetadataPage:
    """A page of records and the cursor of the next one (None on the last page)."""

    items: list[MetadataRecord]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class MetadataSearch:
    """A search (the documents' ``MetadataSearch``).

    ``semantic_search`` fuses full-text ranking with vector similarity by reciprocal rank
    (k = 60); ``False`` is full text alone. ``text_search=False`` with ``semantic_search`` is
    vector similarity alone. ``similarity_threshold`` is on the calibrated similarity in
    [0, 1] (an estimate of the probability that the record is relevant to the query, fitted on
    a labelled catalogue; see the docs): candidates by meaning below it are dropped, matches by
    text are kept. ``language`` (BCP 47, e.g. ``de``) stems the query's words in that language
    besides the language-neutral form. ``fields`` keeps records whose top-level content fields
    equal the given values.
    """

    query: str
    semantic_search: bool = True
    similarity_threshold: float = 0.01
    text_search: bool = True
    metadata_type: MetadataType | None = None
    schema_name: str | None = None
    fields: dict[str, FieldValue] = field(default_factory=dict)
    language: str | None = None
    limit: int = 10


@dataclass(frozen=True, slots=True)
class UpgradeStep:
    """One batch of a schema upgrade: how many records were upgraded, those whose upgraded
    content does not validate (left as written), the last id taken, and whether more remain."""

    upgraded: int
    failed: tuple[str, ...]
    last: str | None
    more: bool


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A found record: its fused score, and the evidence (similarity, text rank) behind it."""

    record: MetadataRecord
    score: float
    #: The calibrated similarity in [0, 1] when the record was a candidate by meaning.
    similarity: float | None
    #: The record's place (1 = best) in the full-text ranking, when it matched by text.
    text_rank: int | None


# -- HTTP bodies -------------------------------------------------------------------------------

Language = Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$", max_length=35)]
SchemaName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]
FieldName = Annotated[str, Field(min_length=1, max_length=100)]


class MetadataCreate(BaseModel):
    """``POST /metadata/create``: ``tenant_id`` may be left out (it is the caller's)."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str | None = Field(default=None, max_length=63)
    metadata_type: MetadataType
    content: dict[str, JsonValue]
    schema_name: SchemaName | None = None
    schema_version: int | None = Field(default=None, ge=1)
    language: Language | None = None
    sensitive: bool = False
    sensitive_fields: list[FieldName] = Field(default_factory=list, max_length=100)


class MetadataUpdate(BaseModel):
    """``PUT /metadata/{id}``: the new content, and the version it was read at."""

    model_config = ConfigDict(extra="forbid")

    content: dict[str, JsonValue]
    expected_version: int = Field(ge=1)
    schema_version: int | None = Field(default=None, ge=1)
    language: Language | None = None
    sensitive: bool | None = None
    sensitive_fields: list[FieldName] | None = Field(default=None, max_length=100)


class MetadataRollback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_version: int = Field(ge=1)
    expected_version: int | None = Field(default=None, ge=1)


class MetadataSearchBody(BaseModel):
    """``POST /metadata/search`` (``tenant_id`` may be left out: it is the caller's)."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str | None = Field(default=None, max_length=63)
    query: str = Field(min_length=1, max_length=1000)
    semantic_search: bool = True
    similarity_threshold: float = Field(default=0.01, ge=0.0, le=1.0)
    text_search: bool = True
    metadata_type: MetadataType | None = None
    schema_name: SchemaName | None = None
    fields: dict[FieldName, FieldValue] = Field(default_factory=dict, max_length=20)
    language: Language | None = None
    limit: int = Field(default=10, ge=1, le=100)


# -- the schema registry -----------------------------------------------------------------------

#: A schema's name (its subject): 1-100 characters of letters, digits, ``_``, ``.`` and ``-``.
SCHEMA_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,100}$"


class CompatibilityMode(StrEnum):
    """Which earlier versions a new version of a schema must be compatible with, and how
    (Confluent Schema Registry's modes). BACKWARD: the new schema reads data written with the
    old; FORWARD: the old reads data written with the new; FULL: both. Plain modes compare with
    the latest version, ``_TRANSITIVE`` ones with every earlier version; NONE checks nothing."""

    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"
    NONE = "NONE"

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        """Whether the new version must read data written with the earlier ones."""
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        """Whether the earlier versions must read data written with the new one."""
        return self.value.startswith(("FORWARD", "FULL"))


@dataclass(frozen=True, slots=True)
class CompatibilityReport:
    """Whether a schema is compatible with the versions its mode compares it with, and why not:
    each reason a sentence naming the property path and the rule it breaks."""

    compatible: bool
    mode: CompatibilityMode
    reasons: tuple[str, ...] = ()


class SchemaSubject(BaseModel):
    """A named schema of a tenant: its compatibility mode and latest version."""

    model_config = ConfigDict(frozen=True)

    name: str
    compatibility: CompatibilityMode
    latest: int
    created_at: datetime
    updated_at: datetime


class SchemaVersion(BaseModel):
    """One immutable version of a named schema."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
    compatibility: CompatibilityMode
    created_at: datetime
    created_by: str | None = None

    @property
    def document(self) -> dict[str, Any]:
        """The JSON Schema itself."""
        return self.schema_


class SchemaRegistration(BaseModel):
    """``POST /schemas/{name}``: a new version, and optionally the subject's mode."""

    model_config = ConfigDict(extra="forbid")

    schema_: dict[str, Any] = Field(alias="schema")
    compatibility: CompatibilityMode | None = None


class CompatibilityCheck(BaseModel):
    """``POST /schemas/{name}/compatibility``: the schema to check."""

    model_config = ConfigDict(extra="forbid")

    schema_: dict[str, Any] = Field(alias="schema")


class CompatibilityUpdate(BaseModel):
    """``PUT /schemas/{name}/config``: the subject's new mode."""

    model_config = ConfigDict(extra="forbid")

    compatibility: CompatibilityMode
