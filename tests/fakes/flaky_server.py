"""A real HTTP server on 127.0.0.1 whose answers tests script per path, recording every request.

Each path has a queue of :class:`Reply` (status, JSON or raw body, headers, delay, or a dropped
connection); when a path's queue is empty its ``then`` reply repeats, and an unscripted path echoes:
``POST`` answers 200 with the request's JSON body, ``GET`` answers ``{"path": ...}``. Gzipped request
bodies (``Content-Encoding: gzip``) are decompressed before being recorded and echoed.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (just now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CountingSession(requests.Session):
    """A real ``requests.Session`` that counts the requests it sends and records ``close()``."""

    def __init__(self):
        super().__init__()
        self.calls, self.closed = 0, False

    def close(self):
        self.closed = True
        super().close()

    def request(self, *args, **kwargs):
        self.calls += 1
        return super().request(*args, **kwargs)


@dataclass
class Reply:
    """One scripted answer: ``body`` is JSON-encoded unless it is bytes; ``drop`` closes the socket."""

    status: int = 200
    body: object = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


def error(status: int, message: str, **headers) -> Reply:
    """The serving contract's error shape, ``{"error": ..., "request_id": ...}`` (id filled in)."""
    return Reply(status, {"error": message, "request_id": None}, headers=headers)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict
    raw: bytes
    body: bytes
    at: float


class FlakyServer:
    """Start with ``with FlakyServer() as server:``; ``server.url`` is its root URL."""

    def __init__(self, port: int = 0):
        self.requests: list[Recorded] = []
        self._scripts: dict[str, deque] = {}
        self._then: dict[str, Reply] = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def script(self, path: str, *replies: Reply, then: Reply | None = None) -> None:
        """Answer requests to ``path`` with ``replies`` in order, then ``then`` forever (if given)."""
        with self._lock:
            self._scripts.setdefault(path, deque()).extend(replies)
            if then is not None:
                self._then[path] = then

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    def on(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def next_reply(self, path: str) -> Reply | None:
        with self._lock:
            queue = self._scripts.get(path)
            if queue:
                return queue.popleft()
            return self._then.get(path)

    def record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)


def _handler_for(server: FlakyServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = -1  # one send per response: headers and body apart meet delayed ACKs (40 ms)

        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            self._answer()

        def do_POST(self):
            self._answer()

        def _answer(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
            server.record(Recorded(self.command, self.path, dict(self.headers), raw, body, time.monotonic()))
            reply = server.next_reply(self.path) or self._echo(body)
            time.sleep(reply.delay)
            if reply.drop:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            request_id = self.headers.get("X-Request-Id") or uuid.uuid4().hex
            self._send(reply, request_id)

        def _echo(self, body: bytes) -> Reply:
            if self.command == "POST":
                return Reply(200, json.loads(body) if body else None)
            return Reply(200, {"path": self.path})

        def _send(self, reply: Reply, request_id: str):
            payload = reply.body
            if isinstance(payload, dict) and payload.get("request_id", 0) is None:
                payload = {**payload, "request_id": request_id}
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(reply.status)
            headers = {"Content-Type": "application/json", "X-Request-Id": request_id, **reply.headers}
            for name, value in headers.items():
                self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


# -- shared by the client's test modules --------------------------------------------------------------------

FAST = {"backoff": 0.01, "max_backoff": 0.05}  # keep retry back-off tiny in tests


def fast_client(server: FlakyServer, **kwargs):
    """A DeployedModel for ``server`` with short deadlines and back-off (overridable)."""
    from vci.client import DeployedModel

    return DeployedModel(server.url, **{"deadline": 5.0, "timeout": 2.0, **FAST, **kwargs})
