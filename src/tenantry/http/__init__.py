"""The HTTP boundary's shared pieces: what every domain's router declares (the caller, the action
it needs), and the :class:`Gate` protocol the app implements to answer them."""

from tenantry.http.deps import (
    CurrentPrincipal,
    DatabaseDep,
    current_principal,
    declared_access,
    public,
    require,
    require_platform,
)
from tenantry.http.gate import Gate, bearer_credential, client_info, provided

__all__ = [
    "CurrentPrincipal",
    "DatabaseDep",
    "Gate",
    "bearer_credential",
    "client_info",
    "current_principal",
    "declared_access",
    "provided",
    "public",
    "require",
    "require_platform",
]
