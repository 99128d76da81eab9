"""#17's ServiceMonitor applied: deploy applies it as a custom object where the cluster serves the Prometheus
Operator's CRD, refuses clearly (changing nothing) where it does not, and prunes it once the setting is removed,
all under exactly the Role `vci render --rbac` prints. The test API server serves monitoring.coreos.com/v1 only
once the CRD is created, validating ServiceMonitors against the Operator's published schema."""

import pytest

from tests.fakes.kube import DEFAULT_TOKEN, DEFAULT_USER, Rbac, start_kube_server
from tests.fakes.kube.crds import service_monitor_crd
from vci.config import load_settings
from vci.deploy import deploy, target_for, undeploy
from vci.deploy.rbac import render_rbac, subject
from vci.errors import DeployError

from .conftest import write_config
from .test_kube import log_run

CI_TOKEN, CI_USER = "ci-token", "ci-deployer"
MONITOR = ("monitoring.coreos.com", "v1", "ml-staging", "servicemonitors", "scaler-staging")


@pytest.fixture(scope="module")
def kube():
    """A test server on which the CI user may do exactly what the rendered Role grants in ml-staging."""
    server = start_kube_server(
        namespaces=("ml-staging",),
        tokens={DEFAULT_TOKEN: DEFAULT_USER, CI_TOKEN: CI_USER},
        rbac=Rbac(superusers={DEFAULT_USER}),
    )
    server.rbac.load(render_rbac("ml-staging", subject(None, CI_USER, "ml-staging")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def project(tmp_path, kube, registry, scratch_base, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig", token=CI_TOKEN)

    def configure(**staging):
        write_config(tmp_path, kubeconfig, f"{registry.host}/ml/scaler", scratch_base, **staging)
        return load_settings(cwd=tmp_path, environ={})

    yield configure
    undeploy(configure())


def test_without_the_operators_crd_deploy_refuses_and_changes_nothing(project, tmp_path):
    settings = project(service_monitor=True)
    with pytest.raises(DeployError, match=r"serves no ServiceMonitor \(monitoring.coreos.com/v1\)") as refused:
        deploy(settings, log_run(settings, tmp_path, "2").id, "staging", timeout=60)
    assert "install the Prometheus Operator" in refused.value.hint
    assert target_for(settings, "staging").cluster.read("Deployment", "scaler-staging", "ml-staging") is None
    deploy(project(), log_run(settings, tmp_path, "2").id, "staging", timeout=60)  # without it: deployed


def test_the_service_monitor_is_applied_validated_and_pruned(project, kube, tmp_path):
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    api = config.new_client_from_config(str(kube.kubeconfig(tmp_path / "admin")))
    extensions, objects = client.ApiextensionsV1Api(api), client.CustomObjectsApi(api)
    extensions.create_custom_resource_definition(service_monitor_crd())
    try:
        settings = project(service_monitor={"interval": "15s", "labels": {"release": "kube-prometheus-stack"}})
        result = deploy(settings, log_run(settings, tmp_path, "3").id, "staging", timeout=60)
        assert result.changes["ServiceMonitor/scaler-staging"] == "created", result
        monitor = objects.get_namespaced_custom_object(*MONITOR)
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
        again = deploy(settings, result.image, "staging", timeout=60)  # the same image, the same settings
        assert again.status == "unchanged"  # compared like the other objects: nothing rewritten

        broken = {**monitor, "spec": {**monitor["spec"], "endpoints": [{"port": "http", "interval": "15x"}]}}
        with pytest.raises(ApiException) as invalid:  # the fake enforces the Operator's schema, as a cluster does
            objects.replace_namespaced_custom_object(*MONITOR, broken)
        assert invalid.value.status == 422 and "spec.endpoints[0].interval" in invalid.value.body

        settings = project()  # the setting removed: the ServiceMonitor goes with the next deploy
        dry = deploy(settings, result.image, "staging", dry_run=True)
        assert dry.prune == ["ServiceMonitor/scaler-staging"]
        pruned = deploy(settings, result.image, "staging", timeout=60)
        assert pruned.changes["ServiceMonitor/scaler-staging"] == "deleted"
        with pytest.raises(ApiException) as gone:
            objects.get_namespaced_custom_object(*MONITOR)
        assert gone.value.status == 404
    finally:
        extensions.delete_custom_resource_definition("servicemonitors.monitoring.coreos.com")
