"""The servers' own capacity on this machine, the inputs of the scaling model
(``docs/scaling-model.md``): what one PostgreSQL and one Redis do here with C clients
(``pgbench``, ``redis-benchmark``), with nothing of tenantry's in the way.

- PostgreSQL: ``create_session``'s write transaction (``BEGIN; SET LOCAL tenantry.tenant_id``,
  the session row, its activity row, a 356-byte audit entry queued, ``COMMIT``) and a
  validation's read transaction (``BEGIN; SET LOCAL``, one of 100,000 sessions looked up by its
  token's hash, ``COMMIT``), on tables of the same shape in a database of their own (dropped
  after), 16 clients, ``synchronous_commit`` as the server has it.
- Redis: ``SET`` and ``GET`` of 3-byte values, 50 clients, without pipelining and with 16
  commands a round trip, on a ``redis-server`` of its own (a free port, nothing saved).

Run ``python -m benchmarks.capacity [--database-url URL] [--seconds N]`` from the repository root
(``pgbench`` and ``redis-benchmark`` on the PATH: Debian's ``postgresql-client`` and
``redis-tools``). The load average before and after is printed with the figures. Not part of
``python -m benchmarks``: it measures the servers, not tenantry.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

SCHEMA = """
CREATE TABLE sessions (tenant_id text, session_id text, user_id text, session_type text,
  security_level text, token_hash bytea, created_at timestamptz, last_seen_at timestamptz,
  idle_expires_at timestamptz, absolute_expires_at timestamptz, ip text, user_agent text,
  PRIMARY KEY (tenant_id, session_id));
CREATE UNIQUE INDEX ON sessions (token_hash);
CREATE INDEX ON sessions (tenant_id, user_id, absolute_expires_at);
CREATE TABLE session_activity (tenant_id text, session_id text, occurred_at timestamptz,
  kind text, ip text, PRIMARY KEY (tenant_id, session_id, occurred_at, kind));
CREATE TABLE audit_pending (tenant_id text, seq bigserial, entry bytea,
  PRIMARY KEY (tenant_id, seq));
INSERT INTO sessions SELECT 't' || (i % 100), 's' || i, 'u' || i, 'user', 'standard',
  decode(md5(i::text), 'hex'), now(), now(), now() + interval '1 hour', now() + interval '1 day',
  '127.0.0.1', 'bench' FROM generate_series(1, 100000) AS i;
"""

CREATE = r"""\set t random(1, 100)
\set u random(1, 1000000)
BEGIN;
SET LOCAL tenantry.tenant_id = 'tenant';
INSERT INTO sessions VALUES ('t' || :t, md5(random()::text), 'u' || :u, 'user', 'standard',
  decode(md5(random()::text), 'hex'), now(), now(), now() + interval '1 hour',
  now() + interval '1 day', '127.0.0.1', 'bench');
INSERT INTO session_activity VALUES ('t' || :t, md5(random()::text), now(), 'create', '127.0.0.1');
INSERT INTO audit_pending (tenant_id, entry)
  VALUES ('t' || :t, decode(repeat(md5(random()::text), 11), 'hex'));
COMMIT;
"""

VALIDATE = r"""\set t random(1, 100000)
BEGIN;
SET LOCAL tenantry.tenant_id = 'tenant';
SELECT session_id FROM sessions WHERE token_hash = decode(md5(:t::text), 'hex');
COMMIT;
"""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"{name} is not on the PATH")
    return path


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _psql(url: str, database: str, sql: str) -> None:
    subprocess.run(  # noqa: S603 - the server's own client
        [
            _tool("psql"),
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            f"{url.rstrip('/')}/{database}",
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
    )


def _pgbench(url: str, database: str, script: Path, seconds: int) -> float:
    out = subprocess.run(  # noqa: S603 - the server's own client
        [_tool("pgbench"), "-n", "-c", "16", "-j", "2", "-T", str(seconds), "-f", str(script),
         f"{url.rstrip('/')}/{database}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    match = re.search(r"tps = ([0-9.]+)", out)
    if match is None:
        raise RuntimeError(f"pgbench printed no tps: {out}")
    return float(match.group(1))


def postgres(url: str, seconds: int) -> dict[str, float]:
    """Transactions a second of the two shapes (see the module docstring)."""
    database = f"tenantry_capacity_{os.getpid()}"
    _psql(url, "postgres", f"CREATE DATABASE {database}")
    try:
        _psql(url, database, SCHEMA)
        with tempfile.TemporaryDirectory() as folder:
            create, validate = Path(folder) / "create.sql", Path(folder) / "validate.sql"
            create.write_text(CREATE)
            validate.write_text(VALIDATE)
            return {
                "create_session transactions/s": _pgbench(url, database, create, seconds),
                "validation read transactions/s": _pgbench(url, database, validate, seconds),
            }
    finally:
        _psql(url, "postgres", f"DROP DATABASE {database}")


def redis(requests: int) -> dict[str, float]:
    """SET and GET a second, unpipelined and 16 a round trip (see the module docstring)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(  # noqa: S603 - the server itself
            [_tool("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", folder],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(0.5)
            figures: dict[str, float] = {}
            for pipeline in (1, 16):
                out = subprocess.run(  # noqa: S603 - the server's own client
                    [_tool("redis-benchmark"), "-p", str(port), "-t", "set,get", "-c", "50",
                     "-n", str(requests * pipeline), "-P", str(pipeline), "--csv"],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout  # fmt: skip
                for line in out.splitlines()[1:]:
                    test, rps = (cell.strip('"') for cell in line.split(",")[:2])
                    figures[f"{test}/s, {pipeline} a round trip"] = float(rps)
            return figures
        finally:
            server.terminate()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--redis-requests", type=int, default=200_000)
    args = parser.parse_args()
    for tool in ("pgbench", "psql", "redis-benchmark", "redis-server"):
        _tool(tool)
    print(f"load average before: {_load()}; {os.cpu_count()} CPUs")
    for name, value in {
        **postgres(args.database_url, args.seconds),
        **redis(args.redis_requests),
    }.items():
        print(f"{name:45} {value:12,.0f}")
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
