"""``tenantry serve --workers 2``: two processes answer, and ``/metrics`` adds both up
(prometheus-client's multiprocess mode), on the test PostgreSQL server."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.mmap_dict import MmapedDict

from tests.conftest import server_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def live_per_worker(directory: Path) -> dict[str, float]:
    """/health/live requests each worker counted, from its own file (named by its pid)."""
    found: dict[str, float] = {}
    for path in directory.glob("counter_*.db"):
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            if '"tenantry_http_requests_total"' in key and '"/health/live"' in key:
                found[path.stem] = found.get(path.stem, 0.0) + value
    return found


async def test_two_workers_are_added_up_in_metrics(tmp_path: Path) -> None:
    settings = await server_settings("workers")
    assert settings.database_url is not None
    port, data = free_port(), tmp_path / "data"
    stale = data / "prometheus-multiproc"
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"left by an earlier run")  # emptied at start
    env = {
        **os.environ,
        "TENANTRY_DATA_DIR": str(data),
        "TENANTRY_PORT": str(port),
        "TENANTRY_DATABASE_URL": settings.database_url,
        "TENANTRY_API_TOKEN": "test-token",
        "TENANTRY_LOG_LEVEL": "warning",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    status, sent, body, output, code = await asyncio.to_thread(serve_and_scrape, env, port, stale)
    assert status == 200, f"not ready (last answer {status}): {output[-4000:]}"
    per_worker = live_per_worker(stale)
    assert len(per_worker) == 2, f"one worker answered every request: {per_worker}"
    assert sum(per_worker.values()) == sent
    assert not (stale / "counter_1.db").exists()
    live = re.findall(
        r'^tenantry_http_requests_total\{method="GET",route="/health/live",status="200"\} (\S+)$',
        body,
        re.MULTILINE,
    )
    # every /health/live of both workers (the readiness probes are another route)
    assert [float(v) for v in live] == [float(sent)], body[:2000]
    assert "tenantry_db_pool_connections" not in body  # per process: left out (multiprocess.py)
    assert code == 0, output[-4000:]


def serve_and_scrape(
    env: dict[str, str], port: int, directory: Path
) -> tuple[int | str | None, int, str, str, int]:
    """Start the workers, send /health/live until both answered one, scrape; (last readiness
    answer, requests sent, the scrape, the command's output, its exit code)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tenantry", "serve", "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base, token = f"http://127.0.0.1:{port}", {"Authorization": "Bearer test-token"}
    sent, body, status = 0, "", None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = httpx.get(f"{base}/health/ready", timeout=2).status_code
            except httpx.TransportError as exc:
                status = type(exc).__name__
            if status == 200:
                break
            time.sleep(0.25)
        if status == 200:
            # a new connection per request: the kernel hands each to either worker
            while len(live_per_worker(directory)) < 2 and sent < 2000:
                assert httpx.get(f"{base}/health/live", timeout=5).status_code == 200
                sent += 1
            for _ in range(20):  # the scrape, too, may be answered by either worker
                body = httpx.get(f"{base}/metrics", headers=token, timeout=5).text
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0].decode()
    return status, sent, body, output, process.returncode
