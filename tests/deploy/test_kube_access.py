"""Reaching the cluster as a real one is set up: a kubeconfig whose ``tls-server-name`` is the name the API
server's certificate holds (not the address dialled), for deploys and for predictions through the proxy."""

import json

import pytest

from tests.fakes.kube import start_kube_server
from vci.config import load_settings
from vci.deploy import deploy, deployed_model, status, undeploy

from .conftest import write_config
from .test_kube import log_run


def echo_pods(pod, method, path, query, headers, body):
    """The test server's proxy fallback: simulated pods answer /predict with the input doubled."""
    return 200, {"Content-Type": "application/json"}, json.dumps([2 * x for x in json.loads(body)]).encode()


@pytest.fixture()
def named_tls(tmp_path):
    server = start_kube_server(tls=True, tls_server_name="kube.vci.test", namespaces=("ml-staging",))
    server.proxy.fallback = echo_pods
    try:
        yield server
    finally:
        server.stop()


def test_predictions_use_the_kubeconfigs_tls_server_name(named_tls, tmp_path, monkeypatch, registry, scratch_base):
    import requests

    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    kubeconfig = named_tls.kubeconfig(tmp_path / "kubeconfig")
    write_config(tmp_path, kubeconfig, f"{registry.host}/ml/scaler", scratch_base, replicas=1)
    settings = load_settings(cwd=tmp_path, environ={})
    with pytest.raises(requests.exceptions.SSLError, match="(?i)hostname|match"):
        requests.get(named_tls.url + "/healthz", verify=str(named_tls.ca_file), timeout=10)  # 127.0.0.1 is not named
    deploy(settings, log_run(settings, tmp_path).id, "staging", timeout=30)
    assert status(settings, "staging").state == "ready"
    assert deployed_model(settings, "staging").predict([1, 2]) == [2, 4]  # through the proxy, verified TLS
    undeploy(settings, "staging")
