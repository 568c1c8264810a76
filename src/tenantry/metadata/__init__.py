"""Metadata: typed records with versions, a schema registry with evolution, hybrid search."""

from tenantry.metadata.compatibility import check_compatibility, compare
from tenantry.metadata.evolution import upgrade
from tenantry.metadata.indexes import SearchIndexes
from tenantry.metadata.manager import MetadataManager, MetadataManagerFactory
from tenantry.metadata.registry import SchemaRegistry
from tenantry.metadata.schemas import (
    CompatibilityMode,
    CompatibilityReport,
    MetadataPage,
    MetadataRecord,
    MetadataSearch,
    MetadataType,
    MetadataVersion,
    SchemaSubject,
    SchemaVersion,
    SearchHit,
)
from tenantry.metadata.validation import CompiledSchema, check_schema, compile_schema, validate

__all__ = [
    "CompatibilityMode",
    "CompatibilityReport",
    "CompiledSchema",
    "MetadataManager",
    "MetadataManagerFactory",
    "MetadataPage",
    "MetadataRecord",
    "MetadataSearch",
    "MetadataType",
    "MetadataVersion",
    "SchemaRegistry",
    "SchemaSubject",
    "SchemaVersion",
    "SearchHit",
    "SearchIndexes",
    "check_compatibility",
    "check_schema",
    "compare",
    "compile_schema",
    "upgrade",
    "validate",
]
