"""Running the service under test: ``tenantry serve`` (uvicorn, one worker) on a loopback port.

The HTTP rows time the service as it runs in production: its own process and event loop, a real
HTTP server, requests over TCP from another process. Starting a server is set-up, never timed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from benchmarks.environment import BENCH_DATABASE, DATA_DIR, Environment

__all__ = ["free_port", "serve", "service_env"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(
    args: list[str], env: dict[str, str], port: int, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a server process and wait (up to 30 s) until it answers (set-up, not timed); its
    output goes to ``log`` when given."""
    with open(log or os.devnull, "ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own entry points
            [sys.executable, *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{args} did not start")


def service_env(env: Environment, port: int, **settings: str) -> dict[str, str]:
    """The environment of a ``tenantry serve`` on the bench database (either mode), with its own
    port and service token (``TENANTRY_API_TOKEN``), warnings only, and ``settings``
    (``TENANTRY_*`` names) on top."""
    base = {
        **os.environ,
        "TENANTRY_LOG_LEVEL": "warning",
        "TENANTRY_DATABASE_URL": env.runtime.settings.database_url or "",
        "TENANTRY_APP_DATABASE_URL": "",
        "TENANTRY_DATA_DIR": str(DATA_DIR),
        "TENANTRY_EMBEDDED_DATABASE": BENCH_DATABASE,
        "TENANTRY_PORT": str(port),
        "TENANTRY_API_TOKEN": uuid.uuid4().hex,
    }
    return {**base, **settings}
