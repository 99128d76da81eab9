"""An image vci did not build (a model server in busybox shell, made with umoci, pushed with skopeo) goes
through staging and production like vci's own: `vci deploy IMAGE@DIGEST` (its contract checked once ready),
`vci test`, a promotion that production's policy refuses until the image is signed, a second version,
a rollback; and an image without POST /predict is refused naming the route, staging kept as it was.
Pods are the images run with runc (tests/pods.py)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from foreign import foreign_image, push_layout  # noqa: E402
from pods import runc_cluster  # noqa: E402
from registry import RegistryServer  # noqa: E402
from vci.config import load_settings  # noqa: E402
from vci.deploy import deploy, status, target_for  # noqa: E402
from vci.errors import DeployError, RemoteError, VerificationError  # noqa: E402
from vci.release.promote import promote  # noqa: E402
from vci.release.rollback import rollback  # noqa: E402
from vci.sign.keys import generate_key_pair  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("foreign")
    with runc_cluster(("ml-staging", "ml-prod")) as kube, RegistryServer(root / "registry") as reg:
        yield kube, reg


def vci_cli(cwd: Path, *args: str, env: dict | None = None) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "vci", *args, "--output", "json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def sign(cwd: Path, image: str, key: Path) -> None:
    """`vci sign IMAGE@DIGEST` with the key in VCI_SIGNING_KEY_FILE, as a CI job would."""
    signed = vci_cli(cwd, "sign", image, env={"VCI_SIGNING_KEY_FILE": str(key)})
    assert signed["subject"] == image and signed["signature"] and signed["key_id"]


@pytest.mark.slow
def test_a_shell_model_server_is_deployed_tested_signed_promoted_and_rolled_back(cluster, tmp_path, monkeypatch):
    kube, reg = cluster
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    private, public = generate_key_pair(tmp_path / "keys", "ci")
    common = {"target": "kubernetes", "kubeconfig": str(kube.kubeconfig(tmp_path / "kubeconfig")), "replicas": 1}
    staging = {**common, "namespace": "ml-staging", "repository": f"{reg.host}/ml/shell-staging"}
    production = {
        **common,
        "namespace": "ml-prod",
        "repository": f"{reg.host}/ml/shell",
        "verify": {"keys": [str(public)]},
    }
    config = {
        "project": "shell",
        "store": str(tmp_path / "store"),
        "environments": {"staging": staging, "production": production},
    }
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "examples.json").write_text(json.dumps({"inputs": [[1, 2], [0.5]], "expected_outputs": [[2, 4], [1]]}))
    settings = load_settings(cwd=tmp_path, environ={})
    v1 = push_layout(foreign_image(tmp_path / "v1", factor=2), staging["repository"])
    v2 = push_layout(foreign_image(tmp_path / "v2", factor=3), staging["repository"])

    deployed = vci_cli(tmp_path, "deploy", v1, "--env", "staging", "--timeout", "120")
    assert deployed["digest"] == v1.split("@")[1] and deployed["run_id"] is None
    tested = vci_cli(tmp_path, "test", "--env", "staging", "--examples", "examples.json")
    assert tested["passed"] and tested["checked"] == 2

    with pytest.raises(VerificationError, match="is not signed") as unsigned:  # production's policy: the CI key's
        promote(settings, "staging", "production", strategy="direct", examples_file="examples.json", timeout=120)
    assert "vci sign IMAGE@DIGEST" in unsigned.value.hint
    sign(tmp_path, v1, private)
    first = promote(settings, "staging", "production", strategy="direct", examples_file="examples.json", timeout=120)
    assert first["outcome"] == "succeeded" and first["image"] == f"{production['repository']}@{v1.split('@')[1]}"
    assert target_for(settings, "production").client().predict([1, 2]) == [2, 4]

    deploy(settings, v2, "staging", timeout=120)
    sign(tmp_path, v2, private)
    (tmp_path / "examples.json").write_text(json.dumps({"inputs": [[1, 2]], "expected_outputs": [[3, 6]]}))
    promote(settings, "staging", "production", strategy="direct", examples_file="examples.json", timeout=120)
    assert target_for(settings, "production").client().predict([1, 2]) == [3, 6]
    back = rollback(settings, "production", timeout=120)
    assert back["digest"] == v1.split("@")[1] and target_for(settings, "production").client().predict([2]) == [4]

    no_predict = push_layout(foreign_image(tmp_path / "bad", predict=False), staging["repository"])
    with pytest.raises(DeployError, match=r"POST /predict answered 404 and GET /v2/health/ready 404") as refused:
        deploy(settings, no_predict, "staging", timeout=120)
    assert f"rolled back to {v2}" in str(refused.value)
    assert status(settings, "staging").image == v2
    assert answers_within(target_for(settings, "staging").client(), [1], [3], timeout=30)


def answers_within(client, data, expected, timeout: float) -> bool:
    """Whether ``client`` answers ``expected`` within ``timeout``: the refused image's pods were ready (its
    routes, not its readiness, were wrong), so they answer through the Service until they have terminated."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.predict(data) == expected:
                return True
        except RemoteError:
            pass
        time.sleep(0.5)
    return False
