"""Fault injection for real: a TCP proxy that can refuse, drop and delay, and a redis-server.

:class:`TcpProxy` listens on 127.0.0.1 and pipes every connection to a target (PostgreSQL on
127.0.0.1:5432 in these tests). ``refuse()`` closes its listening socket, so new connections get
ECONNREFUSED from the kernel, as from a replica that is down; ``accept()`` listens again on the
same port; ``drop()`` resets every open connection, as a crashed server does; ``latency`` delays
every chunk in both directions.

:class:`RedisProcess` is a redis-server of the test's own on a free port (no persistence), that
the test can kill and start again: the shared Redis is never touched. :class:`HttpServer` is
the smallest HTTP/1.1 server that keeps connections alive and answers ``200 ok`` (it counts the
requests it served).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time

__all__ = ["HttpServer", "RedisProcess", "TcpProxy", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TcpProxy:
    """127.0.0.1:<port> -> target, with faults on demand."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.latency = 0.0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def open_connections(self) -> int:
        return len(self._pipes) // 2

    async def start(self) -> TcpProxy:
        await self.accept()
        return self

    async def accept(self) -> None:
        """Listen (again, on the same port)."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self.port, reuse_address=True
            )
            self.port = self._server.sockets[0].getsockname()[1]

    async def refuse(self) -> None:
        """Stop listening: new connections are refused by the kernel. Open ones stay."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def drop(self) -> None:
        """Reset every open connection."""
        for writer in list(self._pipes):
            writer.transport.abort()
        self._pipes.clear()

    async def close(self) -> None:
        await self.refuse()
        self.drop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await task

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._pipes |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink, (writer, up_writer)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        try:
            while data := await source.read(65536):
                if self.latency:
                    await asyncio.sleep(self.latency)
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            for writer in pair:
                self._pipes.discard(writer)
                writer.transport.abort()


class RedisProcess:
    """A private redis-server: ``start()``, ``kill()``, ``start()`` again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def executable() -> str | None:
        return shutil.which("redis-server")

    async def start(self) -> None:
        binary = self.executable()
        assert binary is not None, "redis-server is not installed"
        self._process = subprocess.Popen(  # noqa: ASYNC220 - a fast fork; the wait is polled
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            return
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None


class HttpServer:
    """Answers every request with ``200 ok``; keeps connections alive."""

    def __init__(self) -> None:
        self.requests = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> HttpServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                self.requests += 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
