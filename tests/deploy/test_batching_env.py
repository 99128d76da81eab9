"""An environment's batching setting reaches its server: a local process's variables and a pod's container."""

from pathlib import Path

import pytest

import vci
from vci.config import load_settings
from vci.deploy import status
from vci.deploy.kube import KubeTarget
from vci.deploy.manifests import render_deployment
from vci.errors import VciError

from .conftest import local_settings


class Stacker:
    """Answers each item with the size of the batch it came in."""

    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return {"size": 1}

    def batch_predict(self, items):
        return [{"size": len(items)} for _ in items]


class Single:
    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return data


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    yield from local_settings(tmp_path, monkeypatch, "{batching: {max_batch_size: 4}}", "batchenv")


def server_environ(pid: int) -> dict:
    data = Path(f"/proc/{pid}/environ").read_bytes().decode()
    return dict(item.split("=", 1) for item in data.split("\0") if "=" in item)


def test_a_local_deploy_batches_as_its_environment_says(settings):
    run = vci.init("batchenv", settings=settings)
    run.log_model(Stacker)
    run.deploy(wait=True)
    environ = server_environ(status(settings).pid)
    assert (environ["VCI_MAX_BATCH_SIZE"], environ["VCI_MAX_LATENCY_MS"]) == ("4", "5")  # latency: the default
    assert run.get_deployed_model().predict(1) == {"size": 1}  # batch_predict answered (a batch of one)


def test_deploying_a_model_without_batch_predict_to_a_batching_environment_says_so(settings):
    run = vci.init("batchenv", settings=settings)
    run.log_model(Single)
    with pytest.raises(VciError, match="has no batch_predict"):
        run.deploy(wait=True)


def test_the_pod_gets_the_batching_variables(tmp_path):
    environments = {"staging": {"target": "kubernetes", "batching": {"max_batch_size": 16, "max_latency_ms": 2.5}}}
    settings = load_settings({"project": "iris", "environments": environments}, cwd=tmp_path, environ={})
    target = KubeTarget(settings, settings.environment("staging"))
    spec = target.spec({"image": "registry.internal/ml/iris@sha256:" + "a" * 64}, "r1")
    container = render_deployment(spec)["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert (env["VCI_MAX_BATCH_SIZE"], env["VCI_MAX_LATENCY_MS"]) == ("16", "2.5")
