"""The cluster network for process pods: kube-proxy and cluster DNS, as far as a pod calling a Service needs.

Every port of every Service with a selector gets a listener on 127.0.0.1 (a free port); each connection
to it goes to one Ready, non-terminating endpoint pod (the service proxy's choice, proxy.py), byte for byte
in both directions, as kube-proxy forwards a connection to a Service's cluster IP. The addresses a pod
would use for a Service port (``NAME.NAMESPACE.svc.cluster.local:PORT``, ``NAME.NAMESPACE.svc:PORT``,
``NAME.NAMESPACE:PORT`` and ``CLUSTER_IP:PORT``) are written to ``network.json`` (``{"address":
"127.0.0.1:port"}``, replaced atomically when Services come and go); podnet.py makes a pod's Python process
connect through it. A connection with no endpoint to go to is closed at once (a real cluster refuses it).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

from .resources import BY_KIND
from .status import ApiError

SERVICES = BY_KIND["Service"]


class ServiceNetwork:
    def __init__(self, store, proxy, backend, directory: Path):
        self.store, self.proxy, self.backend = store, proxy, backend
        self.path = directory / "network.json"
        self.listeners: dict[tuple, socket.socket] = {}  # (namespace, name, port, clusterIP) -> listening socket
        self.written: dict | None = None
        self.sync()

    def sync(self) -> None:
        """Listeners for the Service ports there are now (closing those of Services gone); the address map."""
        wanted = set()
        for service in self.store.list(SERVICES)[0]:
            spec, meta = service.get("spec") or {}, service["metadata"]
            ports = spec.get("ports") or [] if spec.get("selector") else []
            wanted |= {(meta["namespace"], meta["name"], p["port"], spec.get("clusterIP")) for p in ports}
        for key in set(self.listeners) - wanted:
            self.listeners.pop(key).close()
        for key in wanted - set(self.listeners):
            self.listeners[key] = self._listen(*key)
        addresses = {}
        for (namespace, name, port, ip), sock in self.listeners.items():
            there = f"127.0.0.1:{sock.getsockname()[1]}"
            names = (f"{name}.{namespace}.svc.cluster.local", f"{name}.{namespace}.svc", f"{name}.{namespace}", ip)
            addresses.update({f"{host}:{port}": there for host in names if host})
        if addresses != self.written:
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(addresses))
            os.replace(temporary, self.path)
            self.written = addresses

    def stop(self) -> None:
        for sock in self.listeners.values():
            sock.close()
        self.listeners.clear()

    def _listen(self, namespace: str, name: str, port: int, _ip) -> socket.socket:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        threading.Thread(target=self._accept, args=(sock, namespace, name, str(port)), daemon=True).start()
        return sock

    def _accept(self, sock: socket.socket, namespace: str, name: str, port: str) -> None:
        while True:
            try:
                client, _ = sock.accept()
            except OSError:
                return  # the listener was closed: the Service is gone
            threading.Thread(target=self._forward, args=(client, namespace, name, port), daemon=True).start()

    def _forward(self, client: socket.socket, namespace: str, name: str, port: str) -> None:
        try:
            pod = self.proxy._pick(namespace, name, port)
            upstream = socket.create_connection(("127.0.0.1", self.backend.host_port(pod)), timeout=10)
        except (ApiError, OSError, TypeError):
            client.close()
            return
        upstream.settimeout(None)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` to ``sink`` until either ends; then close both (the other direction ends too)."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
