"""Real model-server pods for the Kubernetes API test server: each pod is ``python -m vci.serve`` for the model its
image holds (found by the image digest in ``VCI_IMAGE_DIGEST``, as tests/release/test_kube_release.py does), with
the pod's environment (paths under a configMap or secret mount pointing at the kubelet's host directory for it)
and the cluster's Services reachable by name and cluster IP (tests/fakes/kube/podnet.py)."""

import atexit
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import vci
from tests.build.models import Scaler
from vci.deploy import target_for

MODEL_DIRS: dict[str, str] = {}  # image digest -> model directory of the run it was built from


PODNET = str(Path(__file__).resolve().parents[1] / "fakes" / "kube" / "podnet.py")


def mounted(value: str, mounts: dict[str, str]) -> str:
    """A pod's path as the host sees it: under the mount that holds it, the host directory of that volume."""
    for mount, host in mounts.items():
        if value == mount or value.startswith(mount.rstrip("/") + "/"):
            return host + value[len(mount) :]
    return value


@functools.cache
def _scratch() -> Path:
    """This test process's folder for pods' logs and work dirs (logs are read after a pod stops), removed at exit."""
    path = Path(tempfile.mkdtemp(prefix="vci-pods-"))
    atexit.register(shutil.rmtree, path, True)
    return path


class ServePod:
    """One pod of the test server's process backend: the model server for its image's model on ``port``."""

    pod_context = True  # the backend passes the pod's mounts and the cluster network (processes.PodContext)

    def __init__(self, pod_spec: dict, port: int, context=None):
        mounts = context.mounts if context is not None else {}
        env = {e["name"]: mounted(e["value"], mounts) for e in pod_spec["containers"][0].get("env", []) if "value" in e}
        self.log = tempfile.NamedTemporaryFile(prefix="pod-", suffix=".log", delete=False, dir=_scratch())
        self.work_dir = tempfile.mkdtemp(prefix="pod-work-", dir=_scratch())
        network = context.network if context is not None else None
        command = [
            sys.executable,
            *([PODNET, network] if network else ["-m"]),
            "vci.serve",
            "--model-dir",
            MODEL_DIRS[env["VCI_IMAGE_DIGEST"]],
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        self.proc = subprocess.Popen(
            command,
            stdout=self.log,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env, "VCI_WORK_DIR": self.work_dir},
        )

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def exit_code(self):
        return self.proc.poll()

    def logs(self) -> str:
        return Path(self.log.name).read_text(errors="replace")


def built(settings, tmp_path, factor: str, cls=Scaler) -> str:
    """Log a run of ``cls`` multiplying by ``factor``, package and push it; its image, known to ServePod."""
    (tmp_path / f"factor-{factor}.txt").write_text(factor)
    run = vci.init("scaler", settings=settings)
    run.log_artifact("factor", tmp_path / f"factor-{factor}.txt")
    run.log_model(cls, artifacts=["factor"])
    run.commit()
    image = target_for(settings, "staging").resolve_image(run.id)["image"]
    MODEL_DIRS[image.rsplit("@", 1)[1]] = str(run.model_dir())
    return image
