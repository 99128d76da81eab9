"""The fake API server's lifecycle: a threaded HTTP(S) server on 127.0.0.1, controllers, kubeconfig files.

``KubeServer(...).start()`` binds a free port, starts the HTTP threads, the deployment/replicaset/garbage
collector loop (controller.py) and the pod backend (pods.py); ``stop()`` ends watches, stops pod processes and
joins everything within a few seconds. With ``tls=True`` a self-signed certificate for 127.0.0.1 and localhost
is made with the ``openssl`` CLI and the kubeconfig carries it as certificate-authority-data; with
``tls_server_name`` the certificate names only that host (not 127.0.0.1), and the kubeconfig says
``tls-server-name``, as for an API server reached through an address its certificate does not name. kubectl
(client-go) does not send a bearer token over plain http, so tests that run kubectl use ``tls=True``; the
official Python client sends it either way.
"""

from __future__ import annotations

import base64
import functools
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from .admission import admit
from .api import Api
from .controller import Controller
from .handler import KubeHandler
from .network import ServiceNetwork
from .pods import make_backend
from .proxy import Proxy
from .resources import BY_KIND
from .store import Store

DEFAULT_TOKEN = "vci-test-token"
DEFAULT_USER = "vci-tester"


class QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):  # clients hanging up (TLS EOF, resets) are normal
            super().handle_error(request, client_address)


def make_certificate(directory: Path, names: str = "IP:127.0.0.1,DNS:localhost") -> tuple[Path, Path]:
    """A self-signed certificate and key for ``names`` (subjectAltName; openssl CLI), valid one day."""
    cert, key = directory / "kube-server.crt", directory / "kube-server.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=vci-fake-kube",
            "-addext",
            f"subjectAltName={names}",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


class KubeServer:
    def __init__(
        self,
        *,
        tokens: dict | None = None,
        forbid=(),
        tls: bool = False,
        backend: str = "simulated",
        runner=None,
        namespaces=("default",),
        ready_delay: float = 0.3,
        tick: float = 0.05,
        time_scale: float = 0.1,
        history: int = 2000,
        watch_limit: float = 60.0,
        workdir=None,
        tls_server_name: str | None = None,
        rbac=None,
        endpoint_lag: float = 1.0,
    ):
        self.rbac = rbac  # an rbac.Rbac: deny all it does not grant (None: allow all but ``forbid``)
        self.tls_server_name = tls_server_name  # the certificate names only this host (kubeconfig tls-server-name)
        self.tokens = dict(tokens or {DEFAULT_TOKEN: DEFAULT_USER})
        self.forbid = list(forbid)  # Forbid rules; tests may append while the server runs
        self.tls = tls
        self.watch_limit = watch_limit
        self.requests: list[tuple[str, str, str]] = []  # (method, path, user) of authenticated requests
        self.store = Store(history)
        self.store.admission = functools.partial(admit, self.store)
        self.backend = make_backend(backend, self.store, runner=runner, ready_delay=ready_delay, time_scale=time_scale)
        self.api = Api(self.store, logs=self.backend.logs)
        self.controller = Controller(self.store, tick=tick)
        self.proxy = Proxy(self.store, self.backend, endpoint_lag)
        if backend == "process":  # process pods may call Services: kube-proxy and cluster DNS (network.py)
            self.backend.network = ServiceNetwork(self.store, self.proxy, self.backend, self.backend.root)
        self._own_workdir = workdir is None  # made here, so removed by stop()
        self._workdir = Path(workdir or tempfile.mkdtemp(prefix="vci-kube-"))
        self._initial_namespaces = namespaces
        self._httpd = None
        self._thread = None
        self.ca_file: Path | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return next(iter(self.tokens))

    def start(self) -> KubeServer:
        handler = type("BoundKubeHandler", (KubeHandler,), {"kube": self})
        self._httpd = QuietHTTPServer(("127.0.0.1", 0), handler)
        if self.tls:
            names = f"DNS:{self.tls_server_name}" if self.tls_server_name else "IP:127.0.0.1,DNS:localhost"
            cert, key = make_certificate(self._workdir, names)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            # the handshake happens in the handler thread, so a stalled client cannot block accept()
            self._httpd.socket = context.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
            self.ca_file = cert
        for name in self._initial_namespaces:
            self.store.create(BY_KIND["Namespace"], "", {"metadata": {"name": name}})
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="fake-kube-http", daemon=True
        )
        self._thread.start()
        self.backend.start()
        self.controller.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.store.close()
        self.controller.stop(timeout)
        self.backend.stop(timeout)
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout)
        if self._own_workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> KubeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def kubeconfig(self, path, context: str = "test", namespace: str = "default", token: str | None = None) -> Path:
        """Write a kubeconfig (server URL, bearer token, CA with TLS) whose current context is ``context``."""
        import yaml

        cluster = {"server": self.url}
        if self.ca_file is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_file.read_bytes()).decode()
        if self.tls_server_name:
            cluster["tls-server-name"] = self.tls_server_name
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": context,
            "preferences": {},
            "clusters": [{"name": f"{context}-cluster", "cluster": cluster}],
            "users": [{"name": f"{context}-user", "user": {"token": token or self.token}}],
            "contexts": [
                {
                    "name": context,
                    "context": {
                        "cluster": f"{context}-cluster",
                        "user": f"{context}-user",
                        "namespace": namespace,
                    },
                }
            ],
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path
