"""A real HTTP server on loopback that answers as the Kubernetes API does for a Deployment's
scale subresource (``/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale``).

The standard library's threaded HTTP server, in a thread of its own, on ``127.0.0.1`` and a free
port. It serves:

- ``GET``: the ``autoscaling/v1`` ``Scale`` (``metadata.name``, ``namespace``,
  ``resourceVersion``, ``spec.replicas``, ``status.replicas``, ``status.selector``);
- ``PATCH`` with ``Content-Type: application/merge-patch+json``: ``spec.replicas`` set (a
  whole number, not negative, else 422 Invalid), ``metadata.resourceVersion`` checked when the
  patch carries one (409 Conflict when it is not the current one), the resource version bumped;
  another content type is 415;

and, as the API server does, answers 401 ``Unauthorized`` without the bearer token it was given,
404 ``NotFound`` for a Deployment or namespace it does not hold, 405 for another method, each
with a ``Status`` object. ``status.replicas`` follows ``spec.replicas`` at once (the pods start
instantly), unless ``lag_status`` is set. A test scripts what the next requests meet
(:meth:`KubernetesApi.fail`: a status; :meth:`KubernetesApi.slow`: a delay), changes the
Deployment behind the client's back (:meth:`KubernetesApi.set_replicas`), and reads every
request received (:attr:`KubernetesApi.requests`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Deployment", "KubernetesApi", "Received"]

_PATH = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)/scale$")
_MERGE_PATCH = "application/merge-patch+json"
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
    503: "ServiceUnavailable",
}


@dataclass(frozen=True, slots=True)
class Received:
    at: float
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any


@dataclass
class Deployment:
    replicas: int
    running: int
    version: int = 1


@dataclass
class _State:
    token: str
    deployments: dict[tuple[str, str], Deployment]
    script: deque[tuple[int | None, float]] = field(default_factory=deque)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    versions: int = 100
    lag_status: bool = False


class KubernetesApi:
    """Start with :meth:`start` (or as a context manager); :attr:`url` is the API's base."""

    def __init__(self, *, token: str, deployments: dict[tuple[str, str], int]) -> None:
        self._state = _State(
            token=token,
            deployments={key: Deployment(n, n) for key, n in deployments.items()},
        )
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def deployment(self, namespace: str, name: str) -> Deployment:
        with self._state.lock:
            found = self._state.deployments[namespace, name]
            return Deployment(found.replicas, found.running, found.version)

    def set_replicas(self, namespace: str, name: str, replicas: int) -> None:
        """Someone else scales the Deployment (a new resource version)."""
        with self._state.lock:
            found = self._state.deployments[namespace, name]
            self._state.versions += 1
            found.replicas = found.running = replicas
            found.version = self._state.versions

    def fail(self, status: int, times: int = 1) -> None:
        with self._state.lock:
            self._state.script.extend([(status, 0.0)] * times)

    def slow(self, seconds: float, times: int = 1) -> None:
        with self._state.lock:
            self._state.script.extend([(None, seconds)] * times)

    @property
    def requests(self) -> list[Received]:
        with self._state.lock:
            return list(self._state.requests)

    def patches(self) -> list[Any]:
        return [r.body for r in self.requests if r.method == "PATCH"]

    def start(self) -> KubernetesApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> KubernetesApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _scale(namespace: str, name: str, d: Deployment) -> dict[str, Any]:
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": str(d.version),
            "uid": f"uid-{namespace}-{name}",
        },
        "spec": {"replicas": d.replicas},
        "status": {"replicas": d.running, "selector": f"app={name}"},
    }


class _Handler(BaseHTTPRequestHandler):
    state: _State
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        state = self.state
        with state.lock:
            state.requests.append(Received(time.monotonic(), method, self.path, headers, body))
            scripted = state.script.popleft() if state.script else None
        if scripted is not None:
            status, delay = scripted
            if delay:
                time.sleep(delay)
            if status is not None:
                self._status(status, f"scripted {status}")
                return
        if headers.get("authorization") != f"Bearer {state.token}":
            self._status(401, "Unauthorized")
            return
        match = _PATH.match(self.path)
        if match is None:
            self._status(404, "the server could not find the requested resource")
            return
        namespace, name = match.groups()
        with state.lock:
            found = state.deployments.get((namespace, name))
            if found is None:
                answer = (404, f'deployments.apps "{name}" not found')
            elif method == "GET":
                answer = (200, _scale(namespace, name, found))
            elif method == "PATCH":
                answer = self._patch(namespace, name, found, headers, body)
            else:
                answer = (405, f"{method} is not allowed")
        status, data = answer
        if isinstance(data, str):
            self._status(status, data)
        else:
            self._json(status, data)

    def _patch(
        self, namespace: str, name: str, found: Deployment, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, Any] | str]:
        if headers.get("content-type", "").split(";")[0] != _MERGE_PATCH:
            return 415, "the body of the request was in an unknown format"
        if not isinstance(body, dict):
            return 400, "the patch is not a JSON object"
        version = (body.get("metadata") or {}).get("resourceVersion")
        if version is not None and version != str(found.version):
            return 409, (
                f'Operation cannot be fulfilled on deployments.apps "{name}": the object has '
                "been modified; please apply your changes to the latest version and try again"
            )
        replicas = (body.get("spec") or {}).get("replicas", found.replicas)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            return 422, f'Scale.autoscaling "{name}" is invalid: spec.replicas'
        self.state.versions += 1
        found.replicas = replicas
        if not self.state.lag_status:
            found.running = replicas
        found.version = self.state.versions
        return 200, _scale(namespace, name, found)

    def _status(self, code: int, message: str) -> None:
        self._json(
            code,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": _REASONS.get(code, "Unknown"),
                "code": code,
            },
        )

    def _json(self, code: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except ConnectionError:  # the client gave up waiting (a timeout the test asked for)
            self.close_connection = True
