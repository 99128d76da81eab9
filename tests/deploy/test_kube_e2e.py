"""End to end on the API test server with real pods: each pod is the packaged image run with runc."""

import pytest

import vci
from images import base_image_layout
from pods import runc_cluster
from tests.build.models import BrokenScaler, Scaler
from vci.config import load_settings
from vci.deploy import deploy, deployed_model, status, target_for, undeploy
from vci.errors import DeployError

from .conftest import write_config


@pytest.fixture(scope="module")
def runc_kube():
    with runc_cluster(("ml-staging",)) as server:
        yield server


def log_run(settings, tmp_path, cls, factor):
    (tmp_path / f"factor-{factor}.txt").write_text(factor)
    run = vci.init("scaler", settings=settings)
    run.log_artifact("factor", tmp_path / f"factor-{factor}.txt")
    run.log_model(cls, artifacts=["factor"])
    run.commit()
    return run


@pytest.mark.slow
def test_deploy_predict_through_the_proxy_then_a_broken_image_is_rolled_back(
    tmp_path, monkeypatch, runc_kube, registry
):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    base = f"oci:{base_image_layout()}:base"
    write_config(
        tmp_path, runc_kube.kubeconfig(tmp_path / "kubeconfig"), f"{registry.host}/ml/scaler", base, replicas=1
    )
    settings = load_settings(cwd=tmp_path, environ={})
    good = deploy(settings, log_run(settings, tmp_path, Scaler, "3").id, "staging", timeout=120)
    assert status(settings, "staging").state == "ready"
    model = deployed_model(settings, "staging")
    assert "/services/scaler-staging:http/proxy" in model.url
    assert model.predict([1, 2]) == [3.0, 6.0]  # through the API server's service proxy, with its token

    with pytest.raises(DeployError) as err:
        deploy(settings, log_run(settings, tmp_path, BrokenScaler, "4").id, "staging", timeout=25)
    assert f"rolled back to {good.image}" in str(err.value)
    assert (
        "self-test failed on purpose" in str(err.value)
        or "Readiness" in str(err.value)
        or "not complete" in str(err.value)
    )
    live = target_for(settings, "staging").cluster.read("Deployment", "scaler-staging", "ml-staging")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == good.image
    assert deployed_model(settings, "staging").predict([5]) == [15.0]  # the old version kept serving
    undeploy(settings, "staging")
