"""The HTTP boundary's shared pieces: what every domain's router declares (the caller, the action
it needs), the :class:`Gate` protocol the app implements to answer them, and what the OpenAPI
schema says of each route (:class:`Route`)."""

from tenantry.http.deps import (
    CurrentPrincipal,
    DatabaseDep,
    SessionCredential,
    current_principal,
    declared_access,
    public,
    require,
    require_platform,
    session_credential,
)
from tenantry.http.gate import Gate, bearer_credential, client_info, provided
from tenantry.http.openapi import Route, components, declare, declared_problems
from tenantry.http.problems import BACKEND, PROBLEM_JSON, Issue, Problem, problems

__all__ = [
    "BACKEND",
    "PROBLEM_JSON",
    "CurrentPrincipal",
    "DatabaseDep",
    "Gate",
    "Issue",
    "Problem",
    "Route",
    "SessionCredential",
    "bearer_credential",
    "client_info",
    "components",
    "current_principal",
    "declare",
    "declared_access",
    "declared_problems",
    "problems",
    "provided",
    "public",
    "require",
    "require_platform",
    "session_credential",
]
