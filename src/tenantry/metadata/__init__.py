"""Metadata: typed records with versions, a schema registry with evolution, hybrid search."""

from tenantry.metadata.manager import MetadataManager, MetadataManagerFactory
from tenantry.metadata.schemas import (
    MetadataPage,
    MetadataRecord,
    MetadataSearch,
    MetadataType,
    MetadataVersion,
    SearchHit,
)

__all__ = [
    "MetadataManager",
    "MetadataManagerFactory",
    "MetadataPage",
    "MetadataRecord",
    "MetadataSearch",
    "MetadataType",
    "MetadataVersion",
    "SearchHit",
]
