"""Shared fixtures: real PostgreSQL (embedded, and the server in TENANTRY_TEST_DATABASE_URL).

Each xdist worker gets its own database on each server, created fresh and migrated once per
session; tests keep out of each other's way with tenants of their own (``new_tenant``).

Every keyring of the tests (the app's, and the audit trail of managers made without one) reads
one root key, ``<test data dir>/root.key``, named by ``TENANTRY_ROOT_KEY_FILE``: a deployment
has one root key, and the tests' tenants are audited across many Database objects.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tenantry.api import create_app
from tenantry.api.state import AppState
from tenantry.config import Settings, load_settings
from tenantry.db.bootstrap import quote_ident
from tenantry.db.embedded import EmbeddedPostgres
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.keys.provider import FileKeyProvider, provider_from_environment
from tenantry.lifecycle.provisioning import PROVISIONING
from tenantry.tenants import Tenant, TenantRegistry
from tenantry.workflows import WorkflowRegistry
from tenantry.workflows.release import RELEASE_TRACK

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA_DIR = Path(os.environ.get("TENANTRY_TEST_DATA_DIR", ROOT / ".tenantry-test"))
SERVER_URL = os.environ.get("TENANTRY_TEST_DATABASE_URL")
#: The tests' tier policies: request rates out of the suite's way (see the file).
TEST_TIERS = ROOT / "tests" / "support" / "tiers.toml"
IN_CI = os.environ.get("CI", "").lower() == "true"

_root_key = provider_from_environment(load_settings(data_dir=TEST_DATA_DIR, root_key_file=None))
os.environ["TENANTRY_ROOT_KEY_FILE"] = str(TEST_DATA_DIR / "root.key")
del _root_key


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def database_name(purpose: str) -> str:
    """Per worker; ``TENANTRY_TEST_RUN`` keeps concurrent runs on one server apart."""
    run = os.environ.get("TENANTRY_TEST_RUN", "")
    return f"tenantry_test_{purpose}_{run}{worker_id()}"


async def recreate_database(admin_url: str | object, name: str) -> None:
    url = make_url(str(admin_url)) if isinstance(admin_url, str) else admin_url
    engine = create_async_engine(
        url.set(drivername="postgresql+asyncpg", database="postgres"),  # type: ignore[attr-defined]
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
    )
    async with engine.connect() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)"))
        await conn.execute(text(f"CREATE DATABASE {quote_ident(name)}"))
    await engine.dispose()


async def cli_environment(
    server: EmbeddedPostgres, purpose: str, root_key: Path | None = None
) -> dict[str, str]:
    """The environment of a ``tenantry`` command on a fresh embedded database of its own (and,
    given ``root_key``, a root key file made there)."""
    name = database_name(purpose)
    await recreate_database(server.url("postgres"), name)
    env = {
        "TENANTRY_DATA_DIR": str(TEST_DATA_DIR),
        "TENANTRY_EMBEDDED_DATABASE": name,
        "TENANTRY_DATABASE_URL": "",
    }
    if root_key is not None:
        FileKeyProvider.create(root_key)
        env["TENANTRY_ROOT_KEY_FILE"] = str(root_key)
    return env


@pytest.fixture(scope="session")
async def embedded_server() -> AsyncIterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(TEST_DATA_DIR)
    await server.start_async()
    yield server
    await server.stop_async()


async def embedded_settings(server: EmbeddedPostgres, purpose: str) -> Settings:
    name = database_name(purpose)
    await recreate_database(server.url("postgres"), name)
    return load_settings(
        data_dir=TEST_DATA_DIR,
        embedded_database=name,
        api_token="test-token",
        ml_models_enabled=True,
        tier_policies=TEST_TIERS,
    )


async def server_settings(purpose: str) -> Settings:
    if SERVER_URL is None:
        if IN_CI:
            pytest.fail("CI=true but TENANTRY_TEST_DATABASE_URL is not set")
        pytest.skip("TENANTRY_TEST_DATABASE_URL is not set")
    name = database_name(purpose)
    await recreate_database(SERVER_URL, name)
    url = make_url(SERVER_URL).set(database=name)
    return load_settings(
        database_url=url.render_as_string(hide_password=False),
        data_dir=TEST_DATA_DIR,
        api_token="test-token",
        ml_models_enabled=True,
        tier_policies=TEST_TIERS,
    )


async def started_runtime(settings: Settings) -> DatabaseRuntime:
    runtime = DatabaseRuntime(settings)
    await runtime.start()
    await runtime.migrate()
    return runtime


@pytest.fixture(scope="session")
async def settings(embedded_server: EmbeddedPostgres) -> Settings:
    """Settings of this worker's migrated database on the embedded server."""
    s = await embedded_settings(embedded_server, "main")
    runtime = await started_runtime(s)
    await runtime.stop()
    return s


@pytest.fixture(scope="session")
async def runtime(settings: Settings) -> AsyncIterator[DatabaseRuntime]:
    rt = DatabaseRuntime(settings)
    await rt.start()
    yield rt
    await rt.stop()


@pytest.fixture(scope="session")
async def db(runtime: DatabaseRuntime) -> AsyncIterator[Database]:
    database = runtime.open_database()
    yield database
    await database.dispose()


@pytest.fixture(scope="session", params=["embedded", "server"])
async def backend_db(
    request: pytest.FixtureRequest, embedded_server: EmbeddedPostgres
) -> AsyncIterator[tuple[DatabaseRuntime, Database]]:
    """A migrated database on each kind of PostgreSQL: (runtime, app database)."""
    if request.param == "embedded":
        s = await embedded_settings(embedded_server, "isolation")
    else:
        s = await server_settings("isolation")
    rt = await started_runtime(s)
    database = rt.open_database()
    yield rt, database
    await database.dispose()
    await rt.stop()


NewTenant = Callable[..., Awaitable[Tenant]]


@pytest.fixture
def new_tenant(db: Database) -> NewTenant:
    """Make a tenant with a unique id in the worker's database."""

    async def make(prefix: str = "t", database: Database | None = None, **kwargs: object) -> Tenant:
        tenant_id = f"{prefix}-{uuid.uuid4().hex[:12]}"
        return await TenantRegistry(database or db).create(
            tenant_id, f"Tenant {tenant_id}", **kwargs
        )  # type: ignore[arg-type]

    return make


TOKEN = {"Authorization": "Bearer test-token"}


async def quiet_background(state: AppState) -> None:
    """Stop the session app's background jobs that reach rows other tests make and drive
    themselves, and keep its workflow worker to the service's own definitions.

    The app of ``client`` lives through every test of the worker, on the database they share,
    and a sweep of every active tenant (or a visit of the platform) lands at any moment of
    another test. Each job stopped here is one such test's own machinery, and no test of
    ``client`` waits on it (a test of the service's own rounds runs an app of its own):

    - the alert dispatcher (a sweep at its first and every 600th round) claimed and delivered
      the outbox rows a platform-route test queued and dispatched itself (the CI failure);
    - the alert evaluator (its first round, 30 s in, sweeps every active tenant and the
      platform, and keeps every tenant found with rules): it evaluates at the real time the
      rules a test evaluates at its own (tests/alerts/test_platform_route.py: a later
      ``evaluated_at`` makes the test's evaluation change nothing) and queues their messages,
      the platform's copies too, into outboxes a test dispatches itself;
    - the threat watch (every 30 s, the tenants whose events came through this app, as the
      isolation attacks' do): a HIGH threat is audited in that tenant's log and its message
      queued, with the platform's copy while a platform-route test has routing set;
    - the metrics downsampler (a sweep at its first round, 60 s in, then hourly): it rolls up
      and expires, by the real time, the old buckets a test writes at chosen times and reads
      or downsamples itself (tests/monitoring/test_retention.py, the load forecasts of
      tests/performance/test_planning.py: ten to three days ago, the free tier keeps seven);
    - the behaviour learner (a sweep every 30th round): it takes the ready sessions a test
      seeds and learns from itself (tests/sessions/test_learning.py counts what it takes);
    - the retention job (its first round, an hour in, sweeps every active tenant and the
      platform): it deletes the old rows a test seeds and deletes with its own job
      (tests/lifecycle/test_retention.py counts what it deletes).

    The workflow worker runs on (tests/lifecycle/test_http.py and tests/workflows/test_release.py
    wait on it), with the definitions the service registers only: the suite registers others in
    the same registry (``effects.counted``, imported at collection), whose sagas a test runs on
    worker processes of its own (tests/workflows/test_reliability.py, one SIGKILLed). The
    platform's provisioning sagas that tests/lifecycle/test_provisioning.py drives may still be
    run by it: that test waits for whichever worker runs them.
    """
    await state.dispatcher.close()
    await state.alerts.close()
    await state.threat_watch.close()
    await state.monitoring.downsampler.close()
    await state.sessions.learner.close()
    await state.retention.close()
    if state.workflow_worker is not None:
        state.workflow_worker.engine.registry = WorkflowRegistry([PROVISIONING, RELEASE_TRACK])


@pytest.fixture(scope="session")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, over ASGI (no sockets), its background jobs that would
    reach other tests' rows stopped before their first round (:func:`quiet_background`)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await quiet_background(app.state.tenantry)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tenantry") as c:
            yield c


REDIS_URL = os.environ.get("TENANTRY_TEST_REDIS_URL")


def require_redis() -> str:
    """The shared test Redis URL; skips without one (fails when CI=true)."""
    if REDIS_URL is None:
        if IN_CI:
            pytest.fail("CI=true but TENANTRY_TEST_REDIS_URL is not set")
        pytest.skip("TENANTRY_TEST_REDIS_URL is not set")
    return REDIS_URL


class RedisProcess:
    """A redis-server of our own on a free port, to stop and start in fault tests."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    require_redis()  # fault tests run where the Redis tests run
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = RedisProcess(port)
    server.start()
    yield server
    server.stop()


class RedisClusterProcesses:
    """Three ``redis-server --cluster-enabled yes`` masters on loopback, formed into a cluster
    (``redis-cli --cluster create``, no replicas); ``url`` is one of them, the seed node. A node
    killed (``kill``) comes back (``restart``) with its slots (its nodes file), empty."""

    def __init__(self, directory: Path, ports: list[int]) -> None:
        self.directory = directory
        self.ports = ports
        self.url = f"redis://127.0.0.1:{ports[0]}"
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.server = self.cli = ""

    def start(self) -> None:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            if IN_CI:
                pytest.fail("CI=true but redis-server or redis-cli is not installed")
            pytest.skip("redis-server or redis-cli is not installed")
        self.server, self.cli = server, cli
        for port in self.ports:
            self._launch(port)
        subprocess.run(
            [
                *(cli, "--cluster", "create"),
                *(f"127.0.0.1:{p}" for p in self.ports),
                *("--cluster-replicas", "0", "--cluster-yes"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        self.wait_ok()

    def _launch(self, port: int) -> None:
        self.processes[port] = subprocess.Popen(
            [
                *(self.server, "--port", str(port), "--bind", "127.0.0.1"),
                *("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"),
                *("--cluster-node-timeout", "5000", "--dir", str(self.directory)),
                *("--save", "", "--appendonly", "no", "--loglevel", "warning"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait(lambda: self._answers(port), "redis-server did not start")

    def kill(self, port: int) -> None:
        process = self.processes.pop(port)
        process.kill()
        process.wait()

    def restart(self, port: int) -> None:
        self._launch(port)
        self.wait_ok()

    def wait_ok(self) -> None:
        for port in self.ports:
            self._wait(lambda port=port: self._ok(port), "the cluster is not ok")

    @staticmethod
    def _answers(port: int) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    def _ok(self, port: int) -> bool:
        info = subprocess.run(
            [self.cli, "-p", str(port), "cluster", "info"],
            capture_output=True,
            timeout=5,
            check=False,
        ).stdout
        return b"cluster_state:ok" in info

    @staticmethod
    def _wait(condition: Callable[[], bool], failure: str) -> None:
        deadline = time.monotonic() + 20
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(failure)
            time.sleep(0.05)

    def stop(self) -> None:
        for port in list(self.processes):
            self.kill(port)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def started_cluster(directory: Path) -> RedisClusterProcesses:
    """A new cluster of three masters in ``directory`` (skips without redis-server locally,
    fails under CI=true)."""
    ports: list[int] = []
    while len(ports) < 3:  # a cluster node also listens on port + 10000 (the cluster bus)
        port = free_port()
        if port < 55000 and port not in ports and _bindable(port + 10000):
            ports.append(port)
    cluster = RedisClusterProcesses(directory, ports)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """A Redis Cluster of three masters for the session, shared: never kill its nodes (see
    ``started_cluster`` for a cluster of a test's own)."""
    cluster = started_cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()
