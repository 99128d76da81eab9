"""An environment's auth setting reaches its local server, and vci's own clients send the token: the run's
deployed model, `vci predict` and a canary's traffic; a client without it gets the 401."""

import json
import os
import subprocess
import sys

import pytest

import vci
from vci.client import PROXY_TOKEN_HEADER, DeployedModel
from vci.deploy import status
from vci.deploy.local import served_token
from vci.errors import ConfigError, RemoteError

from .conftest import local_settings

TOKEN = "tok-" + "c3" * 16


class Echo:
    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return {"echo": data}


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    monkeypatch.delenv("VCI_TOKEN", raising=False)
    (tmp_path / "tokens").write_text(f"{TOKEN}\n")
    yield from local_settings(tmp_path, monkeypatch, f"{{auth: {{token_file: {tmp_path / 'tokens'}}}}}", "authenv")


def test_a_local_deploy_needs_the_token_and_vci_clients_send_it(settings, tmp_path):
    run = vci.init("authenv", settings=settings)
    run.log_model(Echo)
    run.deploy(wait=True)
    assert run.get_deployed_model().predict([1]) == {"echo": [1]}
    with pytest.raises(RemoteError, match="needs a bearer token") as refused:
        DeployedModel(status(settings).endpoint).predict([1])
    assert TOKEN not in str(refused.value)
    out = subprocess.run(
        [sys.executable, "-m", "vci", "predict", "--env", "staging", "--data", "[2]", "--output", "json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "VCI_STORE": str(tmp_path / "store"), "VCI_PROJECT": "authenv"},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["prediction"] == {"echo": [2]}
    assert TOKEN not in out.stdout + out.stderr
    import requests

    proxy = requests.Session()  # as through the API server's service proxy: Authorization is the proxy's
    proxy.headers["Authorization"] = "Bearer the-kubeconfig-credentials"
    through = DeployedModel(status(settings).endpoint, TOKEN, session=proxy, token_header=PROXY_TOKEN_HEADER)
    assert through.predict([3]) == {"echo": [3]}  # the token in X-Vci-Authorization, the proxy's kept
    with pytest.raises(RemoteError, match="not accepted"):  # the proxy's credentials are no model token
        DeployedModel(status(settings).endpoint, session=proxy, token_header=PROXY_TOKEN_HEADER).predict([3])
    logs = list(tmp_path.rglob("*.log"))
    assert logs and not [p for p in logs if TOKEN in p.read_text(errors="replace")]  # the server's log included


def test_vci_token_wins_and_an_unreadable_token_file_is_said(settings, tmp_path, monkeypatch):
    environment = settings.environment("staging")
    assert served_token(environment) == TOKEN
    monkeypatch.setenv("VCI_TOKEN", "from-the-environment")
    assert served_token(environment) is None  # DeployedModel reads VCI_TOKEN itself
    monkeypatch.delenv("VCI_TOKEN")
    (tmp_path / "tokens").unlink()
    with pytest.raises(ConfigError, match="cannot read environments.staging.auth.token_file"):
        served_token(environment)
