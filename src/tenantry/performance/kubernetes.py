"""A Deployment's scale subresource, read and changed through the Kubernetes API (httpx).

``GET /apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale`` answers an
``autoscaling/v1`` ``Scale``: ``spec.replicas`` (what the Deployment is asked to run),
``status.replicas`` (what it runs) and ``metadata.resourceVersion``. :meth:`DeploymentScale.set`
sends a JSON merge patch (``application/merge-patch+json``) of ``spec.replicas`` carrying the
``resourceVersion`` it read, so the API refuses it (409 Conflict) when anyone changed the
Deployment meanwhile: a decision is never applied to a state it was not made on.

In a pod, :meth:`DeploymentScale.from_settings` finds the API the way client libraries do
(``in-cluster config``): ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``, the
service account's token (read again before each call: the kubelet rotates it) and CA certificate
under ``/var/run/secrets/kubernetes.io/serviceaccount/``, and the pod's namespace from the
``namespace`` file there; each can be set instead (``TENANTRY_AUTOSCALING_*``). The service
account needs ``get`` and ``patch`` on ``deployments/scale`` in that namespace, nothing else.

Every failure is a :class:`~tenantry.errors.KubernetesApiError` with the status (None when no
answer came: a timeout, a refused connection) and the API's own ``message``, cut short.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from tenantry.config import Settings
from tenantry.errors import ConfigError, KubernetesApiError

__all__ = ["DeploymentScale", "Scale"]

_MERGE_PATCH: Final = "application/merge-patch+json"
_MESSAGE_CHARS: Final = 300


@dataclass(frozen=True, slots=True)
class Scale:
    """A Deployment's scale as the API answered it."""

    spec_replicas: int
    status_replicas: int
    resource_version: str


class DeploymentScale:
    """The scale subresource of one Deployment; :meth:`close` its client when done."""

    def __init__(
        self,
        api_url: str,
        *,
        namespace: str,
        deployment: str,
        token_file: Path | None = None,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 10.0,
    ) -> None:
        self.namespace, self.deployment = namespace, deployment
        self.path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}/scale"
        self._token_file = token_file
        self._client = httpx.AsyncClient(
            base_url=api_url.rstrip("/"), verify=verify, timeout=timeout
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> DeploymentScale:
        """The API, token, CA and namespace of the settings, else of the pod (module)."""
        account = settings.autoscaling_token_file.parent
        url = settings.autoscaling_api_url
        if url is None:
            host = os.environ.get("KUBERNETES_SERVICE_HOST")
            port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            if not host:
                raise ConfigError(
                    "AUTO_SCALING_ENABLED needs the Kubernetes API: run in a pod "
                    "(KUBERNETES_SERVICE_HOST) or set TENANTRY_AUTOSCALING_API_URL"
                )
            url = f"https://{f'[{host}]' if ':' in host else host}:{port}"
        namespace = settings.autoscaling_namespace
        if namespace is None:
            try:
                namespace = (account / "namespace").read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    "AUTO_SCALING_ENABLED needs a namespace: set TENANTRY_AUTOSCALING_NAMESPACE "
                    f"(no {account / 'namespace'}: {exc.strerror})"
                ) from None
        ca = settings.autoscaling_ca_file
        verify: ssl.SSLContext | bool = True
        if url.startswith("https://") and ca.is_file():
            verify = ssl.create_default_context(cafile=str(ca))
        return cls(
            url,
            namespace=namespace,
            deployment=settings.autoscaling_deployment,
            token_file=settings.autoscaling_token_file,
            verify=verify,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def get(self) -> Scale:
        """The Deployment's scale now."""
        body = await self._call("GET", None)
        try:
            return Scale(
                int(body["spec"].get("replicas", 0)),
                int((body.get("status") or {}).get("replicas", 0)),
                str(body["metadata"]["resourceVersion"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise KubernetesApiError("the API answered a scale without its fields") from None

    async def set(self, replicas: int, *, resource_version: str | None = None) -> Scale:
        """Ask the Deployment for ``replicas``; with ``resource_version``, only if it is still
        the one read (else 409: :class:`~tenantry.errors.KubernetesApiError`)."""
        patch: dict[str, Any] = {"spec": {"replicas": replicas}}
        if resource_version is not None:
            patch["metadata"] = {"resourceVersion": resource_version}
        await self._call("PATCH", patch)
        return await self.get()

    async def _call(self, method: str, patch: dict[str, Any] | None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if self._token_file is not None:
            try:
                headers["Authorization"] = f"Bearer {self._token_file.read_text().strip()}"
            except OSError as exc:
                raise KubernetesApiError(f"no service account token: {exc.strerror}") from None
        if patch is not None:
            headers["Content-Type"] = _MERGE_PATCH
        where = f"{method} {self.namespace}/{self.deployment}/scale"
        try:
            answer = await self._client.request(method, self.path, json=patch, headers=headers)
        except httpx.TimeoutException:
            raise KubernetesApiError(
                f"{where}: the API did not answer in time", timed_out=True
            ) from None
        except httpx.HTTPError as exc:
            raise KubernetesApiError(f"{where}: {type(exc).__name__}") from None
        try:
            body = answer.json()
        except ValueError:
            body = None
        if answer.status_code >= 400:
            message = body.get("message") if isinstance(body, dict) else None
            shown = str(message or answer.reason_phrase)[:_MESSAGE_CHARS]
            raise KubernetesApiError(
                f"{where}: {answer.status_code} {shown}", status=answer.status_code
            )
        if not isinstance(body, dict):
            raise KubernetesApiError(f"{where}: the API answered no JSON object")
        return body
