"""Real pods for the Kubernetes API test server: its process backend runs each pod's image with runc.

    with runc_cluster(("ml-staging", "ml-prod"), authfile=node_auth) as kube:
        kube.kubeconfig(tmp_path / "kubeconfig")   # what vci is given

Each pod pulls ``spec.containers[0].image`` from the registry (skopeo, as the kubelet would; an image
digest already unpacked by this process is not pulled again, like ``imagePullPolicy: IfNotPresent``) and
runs it with its env on its own host port (``VCI_PORT``). ``authfile`` stands for the node's registry
credentials (the kubelet's config.json), for registries that need a login.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
from pathlib import Path

from images import run_image
from tests.fakes.kube import start_kube_server


class RuncPod:
    """The test server's process backend handle: one runc container per pod, on the pod's host port."""

    def __init__(self, pod_spec: dict, port: int, authfile: Path | None = None):
        container = pod_spec["containers"][0]
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        env["VCI_PORT"] = str(port)
        self.box = run_image(container["image"], env=env, port=port, authfile=authfile)

    def stop(self):
        self.box.stop(timeout=5)

    def alive(self) -> bool:
        return self.box.status() == "running"

    def logs(self) -> str:
        return self.box.logs()


def registry_authfile(path: Path, host: str, user: str, password: str) -> Path:
    """A containers-auth.json (mode 0600) that logs in to ``host`` as ``user``."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def runc_cluster(namespaces: tuple[str, ...], authfile: Path | None = None):
    """A Kubernetes API test server whose pods are runc containers; stopped (pods included) on exit."""
    runner = functools.partial(RuncPod, authfile=authfile)
    server = start_kube_server(namespaces=namespaces, backend="process", runner=runner)
    try:
        yield server
    finally:
        server.stop()
