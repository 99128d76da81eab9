"""An HTTP proxy in front of a real registry that fails chosen requests on purpose (500, 429, dropped).

    with FaultProxy(registry.url) as proxy:
        proxy.fail("PUT", r"/manifests/", status=500, times=2)
        push_image(RegistryClient(proxy.host), ...)

Everything not scripted is forwarded unchanged (the Host header too, so upload Locations point back at
the proxy). ``seen`` lists ``(method, path, status)`` of every request answered.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


@dataclass
class Fault:
    method: str
    pattern: re.Pattern
    status: int
    times: int
    headers: dict
    body: bytes | None = None


class FaultProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.faults: list[Fault] = []
        self.seen: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def fail(
        self,
        method: str,
        path_regex: str,
        *,
        status: int = 500,
        times: int = 1,
        headers: dict | None = None,
        body: bytes | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` (times=-1: always) and ``body``."""
        with self._lock:
            self.faults.append(Fault(method, re.compile(path_regex), status, times, headers or {}, body))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and fault.pattern.search(path) and fault.times != 0:
                    fault.times -= 1 if fault.times > 0 else 0
                    return fault
        return None

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._take_fault(self.command, self.path)
                if fault:
                    return self._answer(
                        fault.status,
                        fault.headers,
                        (
                            fault.body
                            if fault.body is not None
                            else b'{"errors":[{"code":"UNKNOWN","message":"injected fault"}]}'
                        ),
                    )
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                upstream = requests.request(
                    self.command,
                    proxy.upstream + self.path,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    timeout=30,
                )
                out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS}
                self._answer(
                    upstream.status_code,
                    out,
                    upstream.content if self.command != "HEAD" else b"",
                    upstream.headers.get("Content-Length"),
                )

            def _answer(self, status, headers, data, length=None):
                with proxy._lock:
                    proxy.seen.append((self.command, self.path, status))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", length if self.command == "HEAD" and length else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

            def log_message(self, *args):
                pass

        return Handler
