"""A CI job cancelled in the middle of a canary: ``vci promote --strategy canary`` as a real process gets
SIGTERM (or SIGINT) while a step is held; the canary is removed, the ledger records the attempt as
aborted, the stable release keeps serving, and the command exits 128 + the signal."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from vci.deploy import deploy, status
from vci.deploy.local import LocalTarget
from vci.deploy.process import is_server_process
from vci.release.promote import promote
from vci.release.rollback import history

from .conftest import make_run, release_settings, stop_all

CANARY = {"steps": [50, 100], "interval": 120, "min_requests": 3, "step_timeout": 300}


@pytest.fixture()
def local(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VCI_USER", "tester")
    config = {
        "project": "demo",
        "store": str(tmp_path / "store"),
        "environments": {"production": {"strategy": "canary", "canary": CANARY}},
    }
    (tmp_path / "vci.yaml").write_text(json.dumps(config))
    settings = release_settings(tmp_path, config["environments"])
    yield settings
    stop_all(settings)


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_canary_removes_it_and_records_the_abort(local, tmp_path, sig):
    deploy(local, make_run(local, tmp_path, 2).id, "staging")
    promote(local, "staging", "production")  # nothing ran there: direct
    before = status(local, "production")
    new = make_run(local, tmp_path, 3)
    deploy(local, new.id, "staging")
    target = LocalTarget(local, local.environment("production"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "vci", "promote", "--digest", new.version, "--strategy", "canary", "-o", "json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "VCI_CACHE_DIR": str(tmp_path / "cache"), "VCI_USER": "tester"},
    )
    try:
        canary = wait_for(
            lambda: (target.canary_status() or {}).get("weight") == 50 and target.canary_status(),
            60,
            "the canary's first step",
        )
        time.sleep(0.5)  # inside the step, between checks or in one
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + sig, err
    error = json.loads(err.strip().splitlines()[-1])
    assert error["code"] == "aborted" and f"aborted by {sig.name}" in error["error"]
    assert "the canary was removed" in error["error"]
    assert target.canary_status() is None and not is_server_process(canary["pid"])
    after = status(local, "production")
    assert after.digest == before.digest and after.pid == before.pid  # stable untouched
    latest = history(local, "production")["releases"][0]
    assert latest["outcome"] == "aborted" and latest["digest"] == new.version
    assert f"aborted by {sig.name}" in latest["reason"]
    assert promote(local, "staging", "production", digest=new.version, strategy="direct")["outcome"] == "succeeded"


@pytest.fixture()
def cluster_settings(tmp_path, monkeypatch):
    """staging and production on the API test server with real model-server pods (test_kube_release)."""
    from images import scratch_base_layout
    from registry import RegistryServer
    from tests.fakes.kube import start_kube_server
    from vci.config import load_settings

    from .test_kube_release import ModelPod

    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VCI_USER", "tester")
    kube = start_kube_server(namespaces=("ml-staging", "ml-prod"), backend="process", runner=ModelPod)
    try:
        with RegistryServer(tmp_path / "registry") as reg:
            common = {
                "target": "kubernetes",
                "kubeconfig": str(kube.kubeconfig(tmp_path / "kubeconfig")),
                "base_image": scratch_base_layout(tmp_path / "base"),
            }
            config = {
                "project": "iris",
                "store": str(tmp_path / "store"),
                "environments": {
                    "staging": {**common, "namespace": "ml-staging", "repository": f"{reg.host}/ml/iris-staging"},
                    "production": {
                        **common,
                        "namespace": "ml-prod",
                        "repository": f"{reg.host}/ml/iris",
                        "canary": CANARY,
                    },
                },
            }
            (tmp_path / "vci.yaml").write_text(json.dumps(config))
            yield load_settings(cwd=tmp_path, environ={})
    finally:
        kube.stop()


def test_sigterm_mid_canary_on_a_cluster_deletes_the_canary_deployment(cluster_settings, tmp_path):
    from vci.deploy import target_for

    from .test_kube_release import stage

    settings = cluster_settings
    _, first = stage(settings, tmp_path, 2)
    promote(settings, "staging", "production", digest=first.rsplit("@", 1)[1], timeout=60)
    before = status(settings, "production")
    _, second = stage(settings, tmp_path, 3)
    production = target_for(settings, "production")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vci",
            "promote",
            "--digest",
            second.rsplit("@", 1)[1],
            "--strategy",
            "canary",
            "-o",
            "json",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "VCI_CACHE_DIR": str(tmp_path / "cache"), "VCI_USER": "tester"},
    )
    try:
        wait_for(
            lambda: ((production.canary_status() or {}).get("status") or {}).get("availableReplicas"),
            60,
            "a ready canary pod",
        )
        time.sleep(1.0)  # the step is being held
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "the canary was removed" in json.loads(err.strip().splitlines()[-1])["error"]
    assert production.canary_status() is None  # the canary Deployment is gone from the cluster
    after = status(settings, "production")
    assert after.image == before.image and after.release_id == before.release_id
    assert history(settings, "production")["releases"][0]["outcome"] == "aborted"
