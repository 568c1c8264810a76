"""The app's OpenAPI schema: FastAPI's, with the components its routes refer to.

Each route's operation already says what the HTTP kit declares (:class:`tenantry.http.Route`):
its security requirement, the headers it reads, and every error it answers as
``application/problem+json``. Here the schema gets the security schemes and the ``Problem``
schema they refer to, and loses FastAPI's ``HTTPValidationError``, which the service never
answers (its 422 is a problem too).

``/openapi.json`` and ``/docs`` are public: the schema describes the API, not any tenant.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tenantry.http import components

__all__ = ["document"]

_UNUSED = ("HTTPValidationError", "ValidationError")


def document(app: FastAPI) -> None:
    """Complete ``app``'s OpenAPI schema as FastAPI makes it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        # FastAPI keeps the schema (again while its routes do not change): completed in place,
        # which changes nothing the second time.
        schema = generate()
        found = schema.setdefault("components", {})
        for name in _UNUSED:
            found.get("schemas", {}).pop(name, None)
        for section, entries in components().items():
            found.setdefault(section, {}).update(entries)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
