"""The image's HEALTHCHECK: the API's ``/health/live`` when the container runs ``tenantry
serve``; a ``tenantry worker`` container (no HTTP server) is healthy while its process runs.
Standard library only: it runs in the image's Python, beside the service."""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path


def main(cmdline: Path = Path("/proc/1/cmdline")) -> int:
    """0: healthy; 1: ``serve`` does not answer 200 on its liveness route."""
    try:
        command = cmdline.read_bytes().split(b"\0")
    except OSError:
        command = []
    if b"serve" not in command:
        return 0  # the worker: Docker restarts it when it exits
    port = os.environ.get("TENANTRY_PORT", "8000")
    url = f"http://127.0.0.1:{port}/health/live"
    try:
        with urllib.request.urlopen(url, timeout=4) as answer:
            return 0 if answer.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
