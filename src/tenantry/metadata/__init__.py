"""Metadata: typed records with versions, a schema registry with evolution, hybrid search."""

__all__: list[str] = []
