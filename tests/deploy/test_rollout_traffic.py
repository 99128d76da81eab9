"""Serving through a rollout: with the preStop delay vci renders, a rolling update and a canary's removal lose
no request sent through the Service, on the API test server with real model-server processes as pods.

The test server terminates pods as a cluster does (tests/fakes/kube/pods.py, processes.py): a deleted pod keeps
receiving traffic for the server's endpoint lag (1 s: routing learns of the removal late), its preStop sleep
runs, then SIGTERM, then SIGKILL after the grace period. Each pod is ``python -m vci.serve`` for the model its
image holds (found by the image digest in ``VCI_IMAGE_DIGEST``, as tests/release/test_kube_release.py does)."""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

import vci
from tests.build.models import Scaler
from tests.fakes.kube import start_kube_server
from vci.config import load_settings
from vci.deploy import deploy, target_for
from vci.deploy.kubeproxy import proxy_session

from .conftest import write_config

MODEL_DIRS: dict[str, str] = {}  # image digest -> model directory of the run it was built from


class ServePod:
    """One pod of the test server's process backend: the model server for its image's model on ``port``."""

    def __init__(self, pod_spec: dict, port: int):
        env = {e["name"]: e["value"] for e in pod_spec["containers"][0].get("env", []) if "value" in e}
        self.log = tempfile.NamedTemporaryFile(prefix="pod-", suffix=".log", delete=False)
        command = [
            sys.executable,
            "-m",
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
            env={**os.environ, "VCI_WORK_DIR": tempfile.mkdtemp(prefix="pod-work-")},
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


@pytest.fixture(scope="module")
def serving_kube():
    server = start_kube_server(namespaces=("ml-staging",), backend="process", runner=ServePod)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def settings(tmp_path, monkeypatch, serving_kube, registry, scratch_base):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    write_config(
        tmp_path,
        serving_kube.kubeconfig(tmp_path / "kubeconfig"),
        f"{registry.host}/ml/scaler",
        scratch_base,
        replicas=2,
        prestop_delay="2s",
        progress_deadline="60s",
    )
    yield load_settings(cwd=tmp_path, environ={})


def built(settings, tmp_path, factor: str) -> str:
    """Log a Scaler run multiplying by ``factor``, package and push it; its image, known to ServePod."""
    (tmp_path / f"factor-{factor}.txt").write_text(factor)
    run = vci.init("scaler", settings=settings)
    run.log_artifact("factor", tmp_path / f"factor-{factor}.txt")
    run.log_model(Scaler, artifacts=["factor"])
    run.commit()
    image = target_for(settings, "staging").resolve_image(run.id)["image"]
    MODEL_DIRS[image.rsplit("@", 1)[1]] = str(run.model_dir())
    return image


class Load:
    """Clients sending predictions through the Service (the API server's proxy) until stopped."""

    def __init__(self, target, clients: int = 3):
        self.url = target.proxy_url() + "/predict"
        self.config = target.cluster.api_client.configuration
        self.answers: list = []
        self.failures: list[str] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._send, daemon=True) for _ in range(clients)]

    def _send(self):
        session = proxy_session(self.config)
        while not self.stopping.is_set():
            try:
                reply = session.post(self.url, json=[1], timeout=15)
                if reply.status_code == 200:
                    self.answers.append(reply.json()[0])
                else:
                    self.failures.append(f"{reply.status_code} {reply.text[:120]}")
            except requests.RequestException as exc:
                self.failures.append(repr(exc)[:160])

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)


@pytest.mark.slow
def test_a_rollout_and_a_canary_removal_lose_no_request(settings, tmp_path):
    v1, v2, canary = (built(settings, tmp_path, f) for f in ("2", "3", "5"))
    deploy(settings, v1, "staging")
    target = target_for(settings, "staging")
    with Load(target) as load:
        time.sleep(1)
        deploy(settings, v2, "staging")  # two pods replaced one at a time, each old one deleted under load
        pods = target.cluster.core.list_namespaced_pod("ml-staging", label_selector="vci.dev/track=stable").items
        assert [p.spec.containers[0].image for p in pods] == [v2, v2], "done once no old pod is left to answer"
        handle = target.start_canary(canary, release_id="r-canary")
        time.sleep(1.5)  # the canary takes a third of the traffic
        handle.remove()
        time.sleep(3.5)  # past the endpoint lag and the canary pod's preStop delay
    assert not load.failures, (
        f"{len(load.failures)} of {len(load.failures) + len(load.answers)} failed: {load.failures[:3]}"
    )
    assert {2.0, 3.0, 5.0} <= set(load.answers), "traffic reached every version"
    assert load.answers[-20:] == [3.0] * 20, "in the end only the new stable version answers"
    target.undeploy()
