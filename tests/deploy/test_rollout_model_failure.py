"""A model that cannot start fails its rollout as soon as a pod's log says so, explained in the model's own
file and line, and the previous version keeps serving: on the API test server, each pod a real model server
(tests/deploy/test_rollout_traffic.py's ServePod) whose self-test fails, or whose __init__ raises (the
container exits and is restarted with back-off, as the kubelet does)."""

import time

import pytest

import vci
from tests.build.models import BrokenInitScaler, BrokenScaler, Scaler
from tests.fakes.kube import start_kube_server
from vci.config import load_settings
from vci.deploy import deploy, deployed_model, status, target_for
from vci.errors import DeployError

from .conftest import write_config
from .test_rollout_traffic import MODEL_DIRS, ServePod


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
    kubeconfig = serving_kube.kubeconfig(tmp_path / "kubeconfig")
    write_config(tmp_path, kubeconfig, f"{registry.host}/ml/scaler", scratch_base, progress_deadline="60s")
    return load_settings(cwd=tmp_path, environ={})


def built(settings, tmp_path, cls, factor: str) -> str:
    """Log a run of ``cls`` multiplying by ``factor``, package and push it; its image, known to ServePod."""
    (tmp_path / f"factor-{factor}.txt").write_text(factor)
    run = vci.init("scaler", settings=settings)
    run.log_artifact("factor", tmp_path / f"factor-{factor}.txt")
    run.log_model(cls, artifacts=["factor"])
    run.commit()
    image = target_for(settings, "staging").resolve_image(run.id)["image"]
    MODEL_DIRS[image.rsplit("@", 1)[1]] = str(run.model_dir())
    return image


@pytest.mark.parametrize(
    ("cls", "what", "function"),
    [
        (
            BrokenScaler,
            "the model's self-test (model_test) failed: RuntimeError: self-test failed on purpose",
            "model_test",
        ),
        (
            BrokenInitScaler,
            "the model failed to load: ValueError: the factor file is from another model version",
            "__init__",
        ),
    ],
    ids=["self-test", "init"],
)
def test_a_model_that_cannot_start_fails_the_rollout_at_once_and_says_why(settings, tmp_path, cls, what, function):
    good = built(settings, tmp_path, Scaler, "2")
    deploy(settings, good, "staging")
    bad = built(settings, tmp_path, cls, "3")
    started = time.monotonic()
    with pytest.raises(DeployError) as failed:
        deploy(settings, bad, "staging")  # no timeout: the progress deadline (60 s here) would end it
    seconds = time.monotonic() - started
    message = str(failed.value)
    lines = [line.strip() for line in message.splitlines()]
    assert seconds < 30, f"took {seconds:.0f}s: the rollout waited for its deadline instead of reading the pod's log"
    assert lines[0].startswith("rollout of scaler-staging failed: the model of the new version cannot start (pod ")
    assert f"rolled back to {good}" in lines[0]
    assert what in lines
    assert any(line.startswith('File "models.py", line ') and line.endswith(f", in {function}") for line in lines)
    assert "<dynamic-code>" not in message and " | " not in message and '{"ts"' not in message

    now = status(settings, "staging")  # the new version never became the deployed one
    assert (now.state, now.image) == ("ready", good)
    assert deployed_model(settings, "staging").predict([1]) == [2.0]
    target_for(settings, "staging").undeploy()
