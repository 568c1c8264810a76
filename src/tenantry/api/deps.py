"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from tenantry.api.state import AppState
from tenantry.db.engine import Database
from tenantry.errors import AuthenticationError

__all__ = ["DatabaseDep", "ServiceToken", "StateDep"]


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.tenantry
    return state


StateDep = Annotated[AppState, Depends(_state)]


def _database(state: StateDep) -> Database:
    return state.database


DatabaseDep = Annotated[Database, Depends(_database)]


def _service_token(state: StateDep, authorization: Annotated[str | None, Header()] = None) -> None:
    """The caller holds the service token (``Authorization: Bearer <TENANTRY_API_TOKEN>``)."""
    scheme, _, token = (authorization or "").partition(" ")
    expected = state.api_token.encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise AuthenticationError("send the service token as 'Authorization: Bearer <token>'")


ServiceToken = Annotated[None, Depends(_service_token)]
