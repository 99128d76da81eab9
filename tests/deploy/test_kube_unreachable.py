"""A cluster that does not answer is a one-line DeployError naming its API server, never urllib3's retry chain."""

import subprocess
import sys

import pytest
import yaml

from registry import free_port
from vci.config import load_settings
from vci.deploy import status
from vci.errors import DeployError

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "gone", "cluster": {"server": "https://127.0.0.1:{port}", "insecure-skip-tls-verify": True}}],
    "users": [{"name": "ci", "user": {"token": "not-a-real-token"}}],
    "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "ci"}}],
    "current-context": "gone",
}


@pytest.fixture()
def settings(tmp_path):
    config = yaml.safe_dump(KUBECONFIG).replace("{port}", str(free_port()))  # nothing listens there
    (tmp_path / "kubeconfig").write_text(config)
    env = {"target": "kubernetes", "kubeconfig": str(tmp_path / "kubeconfig"), "namespace": "ml"}
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump({"project": "iris", "environments": {"staging": env}}))
    return load_settings(cwd=tmp_path, environ={})


def test_an_unreachable_api_server_is_named(settings):
    with pytest.raises(DeployError, match=r"cannot reach the Kubernetes API server https://127\.0\.0\.1:\d+"):
        status(settings, "staging")


def test_the_cli_says_it_in_one_line(settings, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "vci", "status", "--env", "staging"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == DeployError.exit_code, out.stderr
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr
    assert "not-a-real-token" not in out.stderr
