"""``tenantry serve --workers 2``: two processes answer, and ``/metrics`` adds both up
(prometheus-client's multiprocess mode), on the test PostgreSQL server."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
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
        try:
            values = list(MmapedDict.read_all_values_from_file(str(path)))
        except struct.error:  # created this instant, not sized yet: nothing counted
            continue
        for key, value, _, _ in values:
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


def embedded_servers(pgdata: Path) -> list[int]:
    """The pids of the postgres processes running on ``pgdata`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or it just exited
            continue
        if argv[0].endswith(b"/postgres") and str(pgdata).encode() in argv:
            found.append(int(entry.name))
    return found


def serve_embedded(env: dict[str, str], port: int, work: Callable[[str], object]) -> str:
    """``tenantry serve --workers 2`` until ready, ``work(base url)``, then SIGTERM; the
    command's output (its exit code asserted 0)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tenantry", "serve", "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base, status = f"http://127.0.0.1:{port}", None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None and status != 200:
            try:
                status = httpx.get(f"{base}/health/ready", timeout=2).status_code
            except httpx.TransportError:
                time.sleep(0.25)
        if status == 200:
            work(base)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
    assert status == 200, f"not ready: {output[-4000:]}"
    assert process.returncode == 0, output[-4000:]
    return output


@pytest.fixture
def pgdata(tmp_path: Path) -> Iterator[Path]:
    """``<tmp>/data/pgdata``; a server the test left running there is stopped after it."""
    path = (tmp_path / "data" / "pgdata").resolve()
    yield path
    for pid in embedded_servers(path):
        os.kill(pid, signal.SIGINT)  # PostgreSQL's fast shutdown


async def test_two_workers_on_the_embedded_postgres(tmp_path: Path, pgdata: Path) -> None:
    """The default setup (no TENANTRY_DATABASE_URL), from a fresh data directory: the command
    starts and migrates the embedded PostgreSQL before its workers join it, both answer, and
    stopping stops the server (also after a worker was killed); a second run finds the first
    one's tenant."""
    port, data = free_port(), tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env |= {"TENANTRY_DATA_DIR": str(data), "TENANTRY_PORT": str(port)}
    env["TENANTRY_LOG_LEVEL"] = "warning"
    multiproc = data / "prometheus-multiproc"
    seen: dict[str, object] = {}

    def first_run(base: str) -> None:
        token = {"Authorization": f"Bearer {(data / 'api-token').read_text().strip()}"}
        sent = 0  # a new connection per request: the kernel hands each to either worker
        while len(live_per_worker(multiproc)) < 2 and sent < 2000:
            assert httpx.get(f"{base}/health/live", timeout=5).status_code == 200
            sent += 1
        body = httpx.get(f"{base}/metrics", headers=token, timeout=5).text
        made = httpx.post(
            f"{base}/tenants", json={"id": "kestrel", "display_name": "Kestrel"}, headers=token
        )
        seen.update(sent=sent, body=body, per_worker=live_per_worker(multiproc), made=made)
        seen["servers"] = embedded_servers(pgdata)
        # A worker killed without closing (as uvicorn kills a hung one) must not keep the
        # server running after the command stops: wait until the supervisor reaped it.
        victim = Path(f"/proc/{min(live_per_worker(multiproc)).removeprefix('counter_')}")
        os.kill(int(victim.name), signal.SIGKILL)
        deadline = time.monotonic() + 20
        while victim.exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    await asyncio.to_thread(serve_embedded, env, port, first_run)
    per_worker = seen["per_worker"]
    assert isinstance(per_worker, dict)
    assert len(per_worker) == 2, f"one worker answered every request: {per_worker}"
    assert sum(per_worker.values()) == seen["sent"]
    live = re.findall(
        r'^tenantry_http_requests_total\{method="GET",route="/health/live",status="200"\} (\S+)$',
        str(seen["body"]),
        re.MULTILINE,
    )
    assert [float(v) for v in live] == [float(str(seen["sent"]))], str(seen["body"])[:2000]
    made = seen["made"]
    assert isinstance(made, httpx.Response)
    assert made.status_code == 201, made.text
    assert seen["servers"], "no embedded postgres ran on the data directory"
    assert embedded_servers(pgdata) == []  # stopped with the command
    assert not (pgdata / "postmaster.pid").exists()

    def second_run(base: str) -> None:
        token = {"Authorization": f"Bearer {(data / 'api-token').read_text().strip()}"}
        seen["again"] = httpx.get(f"{base}/tenants/kestrel", headers=token, timeout=5)

    await asyncio.to_thread(serve_embedded, env, port, second_run)
    again = seen["again"]
    assert isinstance(again, httpx.Response)
    assert again.status_code == 200, again.text
    assert again.json()["display_name"] == "Kestrel"
    assert embedded_servers(pgdata) == []
