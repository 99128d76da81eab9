"""The HTTP side: bearer-token auth (401), deny rules (403), discovery, verbs, watch streams, proxies.

Requests need ``Authorization: Bearer <token>`` with a token the server knows (else 401 Unauthorized Status);
then the ``Forbid`` rules are checked, and with ``rbac`` set (rbac.py) everything its bound rules do not grant
is denied (403 Forbidden Status naming user, verb, resource and namespace, as the RBAC authorizer words it).
Responses are JSON (``application/json``) with Content-Length on a keep-alive HTTP/1.1 connection; watches are
chunked, one JSON event per line, ending after ``timeoutSeconds`` (capped by the server's ``watch_limit``) or
on shutdown. ``Accept: ...;as=Table`` gets a Table (tables.py). ``/openapi/v2`` and ``/openapi/v3`` answer
404, so kubectl needs ``--validate=false``; aggregated discovery is not offered (clients fall back to the
legacy documents).
"""

from __future__ import annotations

import json
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

from . import crds, resources
from . import status as errors
from .api import decode
from .disruption import evict
from .routes import parse_route, rbac_verb
from .tables import to_table, wants_table


class KubeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stalls
    kube = None  # the KubeServer, set on a per-server subclass

    def log_message(self, *args):  # quiet: tests read failures from assertions, not stderr
        pass

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_PATCH(self):
        self._serve("PATCH")

    def do_DELETE(self):
        self._serve("DELETE")

    def do_HEAD(self):
        self._serve("HEAD")

    # -- plumbing ----------------------------------------------------------------------------------------
    def _send(self, code: int, body, content_type: str = "application/json", headers: dict | None = None):
        data = (
            body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _user(self) -> str | None:
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Bearer "):
            return None
        return self.kube.tokens.get(header[len("Bearer ") :].strip())

    def _serve(self, method: str):
        raw = self._body()
        try:
            user = self._user()
            if user is None:
                raise errors.unauthorized()
            self.kube.requests.append((method, self.path, user))
            self._dispatch(method, user, raw)
        except errors.ApiError as exc:
            self._send(exc.code, exc.body)
        except OSError:  # the client went away (mid-watch, TLS EOF): nothing left to answer
            self.close_connection = True

    def _dispatch(self, method: str, user: str, raw: bytes):
        parts = urlsplit(self.path)
        path, query = parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))
        if method == "GET" and self._discovery(path):
            return
        route = parse_route(path, crds.served(self.kube.store))
        if route is None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource", {})
        watch = (query.get("watch") or "").lower() in ("1", "true")
        verbs = [rbac_verb(method, route, watch)]
        if (
            verbs == ["patch"]
            and "apply-patch" in (self.headers.get("Content-Type") or "")
            and not route.subresource
            and self.kube.store.find(route.resource, route.namespace or "", route.name or "") is None
        ):
            verbs.append("create")  # an apply that creates is authorised as create too, as upstream does
        for verb in verbs:
            denied = any(rule.matches(user, verb, route) for rule in self.kube.forbid) or (
                self.kube.rbac is not None and not self.kube.rbac.allows(user, verb, route)
            )
            if denied:
                raise errors.forbidden(user, verb, route.resource, route.subresource, route.name, route.namespace)
        if route.subresource == "proxy":
            code, headers, body = self.kube.proxy.forward(route, method, parts.query, dict(self.headers.items()), raw)
            ctype = next((headers.pop(k) for k in list(headers) if k.lower() == "content-type"), "text/plain")
            self._send(code, body, ctype, headers)
            return
        self._verb(method, route, query, raw, watch)

    def _verb(self, method, route, query, raw, watch):
        api = self.kube.api
        content_type = self.headers.get("Content-Type") or "application/json"
        query = {**query, "_user_agent": self.headers.get("User-Agent") or ""}  # the default field manager
        if method == "GET" and watch:
            return self._stream(api.watch(route, query, self.kube.watch_limit))
        if method == "GET" and route.subresource == "log" and query.get("follow") == "true":
            chunks = api.follow_log(route, query, self.kube.watch_limit)
            return self._stream((chunk.encode() for chunk in chunks), "text/plain")
        if method in ("GET", "HEAD"):
            code, body = api.get(route, query) if route.name else api.list(route, query)
        elif method == "POST" and not route.name:
            code, body = api.create(route, query, decode(raw, content_type))
        elif method == "POST" and route.subresource == "eviction":
            code, body = evict(api.store, route.namespace, route.name)
        elif method == "PUT" and route.name:
            code, body = api.replace(route, query, decode(raw, content_type))
        elif method == "PATCH" and route.name:
            code, body = api.patch(route, query, raw, content_type)
        elif method == "DELETE" and route.name:
            code, body = api.delete(route, query, decode(raw, content_type))
        else:
            raise errors.method_not_allowed()
        if isinstance(body, str):
            return self._send(code, body, "text/plain")
        if method == "GET" and code == 200 and wants_table(self.headers.get("Accept")) and route.subresource == "":
            objects = body["items"] if "items" in body else [body]
            body = to_table(route.resource, objects, body["metadata"].get("resourceVersion", ""))
        self._send(code, body)

    def _stream(self, events, content_type: str = "application/json"):
        """Chunked: each event a JSON line (a watch), or each bytes chunk as it is (a followed log)."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()
        for event in events:
            line = event if isinstance(event, bytes) else json.dumps(event).encode() + b"\n"
            if not line:
                continue  # a zero-length chunk would end the stream
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _discovery(self, path: str) -> bool:
        path = path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            self._send(200, "ok", "text/plain")
            return True
        doc = None
        if path == "/version":
            doc = resources.version_info()
        elif path == "/api":
            doc = resources.api_versions(f"127.0.0.1:{self.kube.port}")
        elif path == "/apis":
            doc = resources.api_group_list(crds.served(self.kube.store))
        elif path == "/api/v1":
            doc = resources.resource_list("", "v1")
        elif path.startswith("/apis/") and path.count("/") == 2:
            doc = resources.api_group(path.split("/")[2], crds.served(self.kube.store))
        elif path.startswith("/apis/") and path.count("/") == 3:
            doc = resources.resource_list(*path.split("/")[2:4], crds.served(self.kube.store))
        if doc is None:
            return False
        self._send(200, doc)
        return True
