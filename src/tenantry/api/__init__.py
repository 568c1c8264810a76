"""The HTTP service: ``create_app(settings)``."""

from tenantry.api.app import create_app

__all__ = ["create_app"]
