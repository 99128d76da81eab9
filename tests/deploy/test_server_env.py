"""A local server gets only what it needs from the deploying process: no credential reaches its environ."""

import re
from pathlib import Path

import pytest

import vci
import vci.serve.__main__ as serve_main
from vci.deploy import status
from vci.deploy.process import INHERITED, server_environment

from .conftest import local_settings

SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-for-the-test-0123456789",
    "AWS_SESSION_TOKEN": "aws-session-token-for-the-test-0123456789",
    "VCI_REGISTRY_USER": "registry-user-for-the-test",  # a value no path or setting contains
    "VCI_REGISTRY_PASSWORD": "registry-password-for-the-test",
    "VCI_TOKEN": "model-token-for-the-test-0123",
    "VCI_AUTH_TOKEN": "server-token-for-the-test-0123",
    "GITHUB_TOKEN": "ghp_" + "x" * 36,
    "JENKINS_TOKEN": "jenkins-token-for-the-test",
    "DOCKER_CONFIG": "/root/.docker",
    "KUBECONFIG": "/root/.kube/config",
}
SET_BY_THE_DEPLOY = {  # passed as flags or set per server by vci.deploy.process, never inherited
    "VCI_MODEL_DIR", "VCI_HOST", "VCI_PORT", "VCI_GRPC_PORT", "VCI_READY_FILE", "VCI_WORK_DIR",
    "VCI_IMAGE_DIGEST", "VCI_RELEASE_ID", "VCI_TRACK",
    # from the environment's settings (Environment.server_env: its name and payload_log), never the shell's
    "VCI_ENVIRONMENT", "VCI_PAYLOAD_SINK", "VCI_PAYLOAD_SAMPLE",
}  # fmt: skip
NOT_INHERITED = {"VCI_AUTH_TOKEN"}  # a secret the server reads: an environment's auth setting gives it a file


class Reporter:
    """Answers with what its process sees of the environment the deploy gave it."""

    def __init__(self, artifacts):
        self.factor = int(open(artifacts["factor"]).read())

    def predict(self, data):
        import os

        return {"mode": os.environ.get("MODEL_MODE"), "level": os.environ.get("LOG_LEVEL"), "x": data * self.factor}


def test_the_server_environment_is_an_allowlist_plus_the_environments_env():
    parent = {**SECRETS, "PATH": "/usr/bin", "HOME": "/root", "LC_ALL": "C.UTF-8", "LANG": "C", "TZ": "UTC",
              "PYTHONPATH": "/src", "VCI_THREADS": "8", "VCI_DRAIN_TIMEOUT": "5", "VCI_STORE": "s3://b/p",
              "VCI_CACHE_DIR": "/cache", "SOME_APP_SETTING": "x"}  # fmt: skip
    env = server_environment(parent, {"MODEL_MODE": "fast", "REPLICAS_HINT": 3}, VCI_WORK_DIR="/w", VCI_RELEASE_ID="r1")
    assert env == {
        "PATH": "/usr/bin", "HOME": "/root", "LC_ALL": "C.UTF-8", "LANG": "C", "TZ": "UTC", "PYTHONPATH": "/src",
        "VCI_THREADS": "8", "VCI_DRAIN_TIMEOUT": "5", "MODEL_MODE": "fast", "REPLICAS_HINT": "3",
        "VCI_WORK_DIR": "/w", "VCI_RELEASE_ID": "r1",
    }  # fmt: skip


def test_every_server_variable_is_inherited_or_set_by_the_deploy():
    """A VCI_* setting added to ``python -m vci.serve`` must be passed on (or set) by a local deploy."""
    documented = set(re.findall(r"\bVCI_[A-Z_]+", serve_main.__doc__ or ""))
    assert documented, "vci.serve.__main__ documents its variables"
    passed = documented - SET_BY_THE_DEPLOY - NOT_INHERITED
    assert passed <= set(INHERITED), passed - set(INHERITED)
    assert not (SET_BY_THE_DEPLOY | NOT_INHERITED) & set(INHERITED)


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    yield from local_settings(tmp_path, monkeypatch, "{env: {MODEL_MODE: fast}}", "envcheck")


def test_no_credential_of_the_deployer_reaches_the_servers_environ(settings, tmp_path, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LOG_LEVEL", "debug")  # neither allowlisted nor named by env: -> not passed either
    (tmp_path / "factor.txt").write_text("2")
    run = vci.init("envcheck", settings=settings)
    run.log_artifact("factor", tmp_path / "factor.txt")
    run.log_model(Reporter, artifacts=["factor"])
    run.deploy(wait=True)
    pid = status(settings).pid
    environ = dict(
        item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0") if "=" in item
    )
    leaked = {name for name, value in SECRETS.items() if name in environ or value in "\0".join(environ.values())}
    assert not leaked, f"the server process can read {sorted(leaked)}"
    assert environ["MODEL_MODE"] == "fast" and "PATH" in environ and "LOG_LEVEL" not in environ
    assert run.get_deployed_model().predict(3) == {"mode": "fast", "level": None, "x": 6}
