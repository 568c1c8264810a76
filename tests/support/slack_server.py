"""A real HTTP server on loopback that answers as Slack does, as slack-sdk sees it.

It runs the standard library's threaded HTTP server in a thread of its own (so a slow answer
never blocks the client's event loop) on ``127.0.0.1`` and a free port, and serves:

- incoming webhooks, ``POST /services/T.../B.../secret``: ``200 ok``; ``400 invalid_payload``
  (no JSON, or neither text nor blocks); ``400 invalid_blocks`` (more than 50); ``404
  no_service`` (an unknown hook);
- the Web API's ``POST /api/chat.postMessage`` and ``/api/chat.update`` (JSON or form body,
  bearer token or ``token`` field): ``{"ok": true, "channel", "ts", "message"}``, or ``{"ok":
  false, "error"}`` with ``not_authed``, ``invalid_auth``, ``channel_not_found``,
  ``no_text``, ``msg_too_long`` (text over 40,000 characters), ``invalid_blocks`` (over 50),
  ``message_not_found`` (an update of a ts the channel does not have).

A test scripts what the next requests meet (:meth:`SlackServer.script` and its shortcuts:
``429`` with ``Retry-After``, ``503``, a delay, a dropped connection), and reads every request
the server received (:attr:`SlackServer.requests`) and every message it holds
(:meth:`SlackServer.messages`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["Behaviour", "Received", "SlackServer"]

MAX_TEXT = 40_000
MAX_BLOCKS = 50


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the server read it."""

    at: float  #: ``time.monotonic()`` when its body had been read
    method: str
    path: str
    headers: dict[str, str]  #: names in lower case
    body: Any  #: the parsed JSON or form, else the text


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What one scripted request meets instead of (or before) the normal answer."""

    status: int | None = None  #: answer this status (with a Slack-like body) instead
    retry_after: int | str | None = None  #: the ``Retry-After`` header of that answer
    body: str | None = None  #: that answer's body, as is, instead of Slack's error
    content_type: str = "text/html"  #: of ``body``
    delay: float = 0.0  #: seconds to wait before answering
    drop: bool = False  #: close the connection without answering


@dataclass
class _Message:
    channel: str
    ts: str
    text: str
    blocks: list[Any]
    thread_ts: str | None
    edited: int = 0


@dataclass
class _State:
    tokens: set[str]
    channels: set[str]
    hooks: dict[str, str] = field(default_factory=dict)  # path -> channel
    script: deque[Behaviour] = field(default_factory=deque)
    requests: list[Received] = field(default_factory=list)
    messages: list[_Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class SlackServer:
    """Start with :meth:`start` (or as a context manager); every URL points at loopback."""

    def __init__(self, *, tokens: set[str] | None = None, channels: set[str] | None = None):
        self._state = _State(tokens=set(tokens or ()), channels=set(channels or ()))
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def api_base_url(self) -> str:
        """What ``AsyncWebClient(base_url=...)`` takes (``https://slack.com/api/`` at Slack)."""
        return f"http://127.0.0.1:{self.port}/api/"

    def webhook(self, channel: str, tail: str = "xyz") -> str:
        """Register an incoming webhook that posts to ``channel``; its URL (``tail`` is its
        secret part)."""
        path = f"/services/T0{len(self._state.hooks):08d}/B0{self.port:08d}/{tail}"
        with self._state.lock:
            self._state.hooks[path] = channel
            self._state.channels.add(channel)
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, behaviour: Behaviour, times: int = 1) -> None:
        with self._state.lock:
            self._state.script.extend([behaviour] * times)

    def rate_limit(self, retry_after: int, times: int = 1) -> None:
        self.script(Behaviour(status=429, retry_after=retry_after), times)

    def fail(self, status: int = 503, times: int = 1) -> None:
        self.script(Behaviour(status=status), times)

    def slow(self, seconds: float, times: int = 1) -> None:
        self.script(Behaviour(delay=seconds), times)

    def drop(self, times: int = 1) -> None:
        self.script(Behaviour(drop=True), times)

    @property
    def requests(self) -> list[Received]:
        with self._state.lock:
            return list(self._state.requests)

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """The messages held, oldest first (after updates), as Slack's message objects."""
        with self._state.lock:
            held = [m for m in self._state.messages if channel in (None, m.channel)]
            return [_message_json(m) for m in held]

    def start(self) -> SlackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._state.stopping.set()  # ends the scripted delays at once
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SlackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _message_json(m: _Message) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "message", "text": m.text, "ts": m.ts, "blocks": m.blocks}
    if m.thread_ts:
        out["thread_ts"] = m.thread_ts
    if m.edited:
        out["edited"] = {"user": "U0BOT", "ts": m.ts}
    return out


class _Handler(BaseHTTPRequestHandler):
    state: _State
    protocol_version = "HTTP/1.1"  # keep-alive, as Slack's front ends do
    timeout = 10  # an idle kept-alive connection ends after this
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read :attr:`SlackServer.requests` instead."""

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = _parse(raw, headers.get("content-type", ""))
        state = self.state
        with state.lock:
            state.requests.append(Received(time.monotonic(), "POST", self.path, headers, body))
            scripted = state.script.popleft() if state.script else None
        if scripted is not None:
            if scripted.delay and state.stopping.wait(scripted.delay):
                return
            if scripted.drop:
                self.close_connection = True
                return
            if scripted.status is not None:
                self._scripted(scripted)
                return
        if self.path.startswith("/api/"):
            self._api(self.path.removeprefix("/api/"), headers, body)
        else:
            self._webhook(body)

    def _scripted(self, b: Behaviour) -> None:
        assert b.status is not None
        extra = {"Retry-After": str(b.retry_after)} if b.retry_after is not None else {}
        api = self.path.startswith("/api/")
        if b.body is not None:  # what a proxy or a broken front end might answer
            return self._send(b.status, b.body.encode(), b.content_type, extra)
        if b.status == 429:
            error = "ratelimited" if api else "rate_limited"
        else:
            error = "service_unavailable" if b.status == 503 else "internal_error"
        if api:
            self._json(b.status, {"ok": False, "error": error}, extra)
        else:
            self._text(b.status, error, extra)

    def _webhook(self, body: Any) -> None:
        with self.state.lock:
            channel = self.state.hooks.get(self.path)
        if channel is None:
            return self._text(404, "no_service")
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return self._text(400, "invalid_payload")
        if len(body.get("blocks") or ()) > MAX_BLOCKS:
            return self._text(400, "invalid_blocks")
        self._store(channel, body, update=None)
        return self._text(200, "ok")

    def _api(self, method: str, headers: dict[str, str], body: Any) -> None:
        args: dict[str, Any] = body if isinstance(body, dict) else {}
        token = headers.get("authorization", "").removeprefix("Bearer ") or args.get("token")
        if method not in ("chat.postMessage", "chat.update"):
            return self._json(404, {"ok": False, "error": "unknown_method"})
        if not token:
            return self._json(200, {"ok": False, "error": "not_authed"})
        with self.state.lock:
            known_token = token in self.state.tokens
            known_channel = args.get("channel") in self.state.channels
        error = (
            "invalid_auth" if not known_token
            else "channel_not_found" if not known_channel
            else "no_text" if not (args.get("text") or args.get("blocks"))
            else "msg_too_long" if len(args.get("text") or "") > MAX_TEXT
            else "invalid_blocks" if len(args.get("blocks") or ()) > MAX_BLOCKS
            else None
        )  # fmt: skip
        if error:
            return self._json(200, {"ok": False, "error": error})
        update = args.get("ts") if method == "chat.update" else None
        if method == "chat.update" and not update:
            return self._json(200, {"ok": False, "error": "invalid_arguments"})
        message = self._store(args["channel"], args, update=update)
        if message is None:
            return self._json(200, {"ok": False, "error": "message_not_found"})
        answer = {"ok": True, "channel": message.channel, "ts": message.ts}
        return self._json(200, {**answer, "message": _message_json(message)})

    def _store(self, channel: str, args: dict[str, Any], update: str | None) -> _Message | None:
        text, blocks = str(args.get("text") or ""), list(args.get("blocks") or [])
        with self.state.lock:
            if update is not None:
                for m in self.state.messages:
                    if m.channel == channel and m.ts == update:
                        m.text, m.blocks, m.edited = text, blocks, m.edited + 1
                        return m
                return None
            ts = f"{1_700_000_000 + next(self.state.ts)}.000100"
            m = _Message(channel, ts, text, blocks, args.get("thread_ts"))
            self.state.messages.append(m)
            return m

    def _json(self, status: int, data: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), "application/json; charset=utf-8", extra)

    def _text(self, status: int, text: str, extra: dict[str, str] | None = None) -> None:
        self._send(status, text.encode(), "text/html", extra)

    def _send(self, status: int, data: bytes, ctype: str, extra: dict[str, str] | None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
            self.close_connection = True


def _parse(raw: bytes, content_type: str) -> Any:
    text = raw.decode("utf-8", "replace")
    if "application/x-www-form-urlencoded" in content_type:
        form: dict[str, Any] = dict(parse_qsl(text))
        for key in ("blocks", "attachments"):
            if isinstance(form.get(key), str):
                with contextlib.suppress(ValueError):
                    form[key] = json.loads(form[key])
        return form
    try:
        return json.loads(text)
    except ValueError:
        return text
