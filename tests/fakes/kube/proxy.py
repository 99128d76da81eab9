"""The API server's service and pod proxies: ``.../services/[http:]NAME[:PORT]/proxy/PATH`` and pods.

A service proxy request goes to one endpoint of the Service, round robin: a Ready pod its selector selects
that is not terminating. A deleted pod (terminating, or gone already) leaves the endpoints ``endpoint_lag``
seconds after its deletion arrived (default 1 s): the endpoints controller drops it at once, but whoever
routes traffic (kube-proxy, an ingress controller, the API server's own endpoint cache) learns of it later,
which is why a pod needs a preStop delay to serve through that window. The request goes to the host port the
process backend assigned to that pod (every container port and named port of the pod maps to it; see
processes.py). Method, body, query and headers (Content-Type, X-Request-Id, Accept, ...; not the caller's
Authorization) are forwarded; the pod's status, headers and body come back unchanged. With no Ready pod the
answer is the real server's 503 ``no endpoints available for service "NAME"``; a pod that refuses the
connection gives 503 ``error trying to reach service: ...``. Simulated pods run nothing: a test may set
``server.proxy.fallback = handler(pod, method, path, query, headers, body) -> (code, headers, body)`` to
answer for them; without one, proxying to a simulated pod is that same 503 (connection refused).
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time

from .resources import BY_KIND
from .routes import Route
from .selectors import selector_matches
from .status import ApiError

PODS, SERVICES = BY_KIND["Pod"], BY_KIND["Service"]
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "host",
    "authorization",
    "proxy-authorization",
    "te",
    "upgrade",
    "accept-encoding",
}


def split_target(name: str) -> tuple[str, str]:
    """``http:svc:port`` / ``svc:port`` / ``svc`` -> (name, port or "")."""
    parts = name.split(":")
    if len(parts) == 3:
        return parts[1], parts[2]
    if len(parts) == 2 and parts[0] in ("http", "https"):
        return parts[1], ""
    return parts[0], parts[1] if len(parts) == 2 else ""


def _unavailable(message: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", message)


class Proxy:
    def __init__(self, store, backend, endpoint_lag: float = 1.0):
        self.store = store
        self.backend = backend
        self.endpoint_lag = endpoint_lag
        self.fallback = None
        self._turns: dict[tuple[str, str], itertools.count] = {}
        self._lock = threading.Lock()

    def forward(self, route: Route, method: str, query: str, headers: dict, body: bytes):
        name, port = split_target(route.name or "")
        if route.resource.plural == "services":
            pod = self._pick(route.namespace, name, port)
        else:
            pod = self.store.find(PODS, route.namespace, name)
            if pod is None:
                raise ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
        path = "/" + route.rest + (f"?{query}" if query else "")
        host_port = getattr(self.backend, "host_port", lambda _pod: None)(pod)
        if host_port is None:
            if self.fallback is not None:
                return self.fallback(pod, method, "/" + route.rest, query, headers, body)
            raise _unavailable(
                f"error trying to reach service: dial tcp {pod['status'].get('podIP', '127.0.0.1')}:"
                f"{port or 80}: connect: connection refused (simulated pod)"
            )
        return self._send(host_port, method, path, headers, body)

    def _pick(self, namespace: str, name: str, port: str) -> dict:
        service = self.store.find(SERVICES, namespace, name)
        if service is None:
            raise ApiError(404, "NotFound", f'services "{name}" not found', {"name": name, "kind": "services"})
        ports = service["spec"].get("ports") or []
        if port and not any(port in (p.get("name"), str(p.get("port"))) for p in ports):
            raise _unavailable(f'no endpoints available for service "{name}"')
        selector = service["spec"].get("selector")
        pods = [
            p
            for p in self.store.list(PODS, namespace)[0] + self._lagging(namespace)
            if selector
            and selector_matches({"matchLabels": selector}, p["metadata"].get("labels"))
            and _ready(p)
            and not p["metadata"].get("deletionTimestamp")
        ]
        if not pods:
            raise _unavailable(f'no endpoints available for service "{name}"')
        with self._lock:
            turn = next(self._turns.setdefault((namespace, name), itertools.count()))
        return pods[turn % len(pods)]

    def _lagging(self, namespace: str) -> list[dict]:
        """Pods deleted less than the endpoint lag ago, as routing still sees them (from before the deletion)."""
        now = time.monotonic()
        return [
            pod
            for since, pod in list(self.store.terminating.values())
            if now - since < self.endpoint_lag and pod["metadata"]["namespace"] == namespace
        ]

    def _send(self, port: int, method: str, path: str, headers: dict, body: bytes):
        forwarded = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request(method, path, body=body or None, headers=forwarded)
            response = connection.getresponse()
            data = response.read()
        except OSError as exc:
            raise _unavailable(f"error trying to reach service: dial tcp 127.0.0.1:{port}: {exc}") from exc
        finally:
            connection.close()
        out = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
        return response.status, out, data


def _ready(pod: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )
