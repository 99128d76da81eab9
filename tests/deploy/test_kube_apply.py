"""How a release is applied on the API test server: validated first, undone on failure, pruned, named."""

import pytest

from tests.fakes.kube import Forbid, start_kube_server
from vci.config import load_settings
from vci.deploy import deploy, target_for, undeploy
from vci.deploy.kubeapi import Cluster
from vci.errors import AuthError, DeployError

from .conftest import write_config
from .test_kube import log_run

KINDS = ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy")
AUTOSCALED = {"autoscaling": {"min_replicas": 2, "max_replicas": 4, "cpu": 70}}


@pytest.fixture()
def project(tmp_path, kube, registry, scratch_base, monkeypatch):
    """``configure(**staging)`` writes vci.yaml for the test server and returns fresh settings."""
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig")

    def configure(repository="ml/scaler", **staging):
        write_config(tmp_path, kubeconfig, f"{registry.host}/{repository}", scratch_base, **staging)
        return load_settings(cwd=tmp_path, environ={})

    yield configure
    undeploy_quietly(configure())


def undeploy_quietly(settings):
    try:
        undeploy(settings, "staging")
    except Exception:  # noqa: BLE001 - nothing deployed
        pass


def live_objects(settings) -> dict:
    cluster = target_for(settings, "staging").cluster
    found = {kind: cluster.read(kind, "scaler-staging", "ml-staging") for kind in KINDS}
    return {kind: obj for kind, obj in found.items() if obj is not None}


def image_of(deployment: dict) -> str:
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def test_objects_vci_no_longer_renders_are_pruned(project, tmp_path):
    settings = project(**AUTOSCALED)
    deploy(settings, log_run(settings, tmp_path, "2").id, "staging", timeout=60)
    assert set(live_objects(settings)) == set(KINDS)
    settings = project(replicas=1)  # no autoscaling, one replica: neither HPA nor PDB is rendered
    dry = deploy(settings, log_run(settings, tmp_path, "3").id, "staging", dry_run=True)
    assert sorted(dry.prune) == ["HorizontalPodAutoscaler/scaler-staging", "PodDisruptionBudget/scaler-staging"]
    assert set(live_objects(settings)) == set(KINDS)  # a dry run deletes nothing
    result = deploy(settings, log_run(settings, tmp_path, "3").id, "staging", timeout=60)
    assert result.changes["HorizontalPodAutoscaler/scaler-staging"] == "deleted"
    assert set(live_objects(settings)) == {"Deployment", "Service", "NetworkPolicy"}
    assert live_objects(settings)["Deployment"]["spec"]["replicas"] == 1  # no HPA overriding it any more


def test_the_network_policy_goes_first_and_is_pruned_when_the_environment_opts_out(project, tmp_path):
    settings = project(network_policy={"from_namespaces": ["ingress-nginx"]})
    first = deploy(settings, log_run(settings, tmp_path, "10").id, "staging", timeout=60)
    assert list(first.changes)[:2] == ["NetworkPolicy/scaler-staging", "Service/scaler-staging"]  # before any pod
    policy = live_objects(settings)["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "scaler",
        "vci.dev/environment": "staging",
    }
    assert policy["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
    settings = project(network_policy=False)
    dry = deploy(settings, first.image, "staging", dry_run=True)  # the same image: only the policy changes
    assert dry.prune == ["NetworkPolicy/scaler-staging"] and "NetworkPolicy" in live_objects(settings)
    pruned = deploy(settings, first.image, "staging", timeout=60)
    assert pruned.changes == {"NetworkPolicy/scaler-staging": "deleted"}
    assert set(live_objects(settings)) == {"Deployment", "Service", "PodDisruptionBudget"}


def test_an_ingress_is_applied_last_and_pruned_when_the_environment_drops_it(project, tmp_path, caplog):
    settings = project(ingress={"host": "scaler.example.com", "class": "nginx", "tls_secret": "scaler-tls"})
    cluster = target_for(settings, "staging").cluster
    with caplog.at_level("WARNING", logger="vci"):
        first = deploy(settings, log_run(settings, tmp_path, "12").id, "staging", timeout=60)
    assert "network_policy: {from_namespaces: [ingress-nginx]}" in caplog.text  # the default policy keeps it out
    assert list(first.changes)[-1] == "Ingress/scaler-staging" and first.changes["Ingress/scaler-staging"] == "created"
    live = cluster.read("Ingress", "scaler-staging", "ml-staging")
    assert live["spec"]["rules"][0]["http"]["paths"][0]["backend"] == {
        "service": {"name": "scaler-staging", "port": {"name": "http"}}
    }
    assert live["spec"]["tls"] == [{"hosts": ["scaler.example.com"], "secretName": "scaler-tls"}]
    assert "Ingress/scaler-staging" in undeploy(settings, "staging", dry_run=True).objects
    assert deploy(settings, first.image, "staging").status == "unchanged"  # as the server keeps it
    settings = project()  # ingress dropped
    dry = deploy(settings, first.image, "staging", dry_run=True)
    assert dry.prune == ["Ingress/scaler-staging"] and cluster.read("Ingress", "scaler-staging", "ml-staging")
    pruned = deploy(settings, first.image, "staging", timeout=60)
    assert pruned.changes == {"Ingress/scaler-staging": "deleted"}
    assert cluster.read("Ingress", "scaler-staging", "ml-staging") is None


def test_undeploy_removes_every_object_and_a_dry_run_none(project, tmp_path):
    settings = project(**AUTOSCALED)
    deploy(settings, log_run(settings, tmp_path, "11").id, "staging", timeout=60)
    planned = undeploy(settings, "staging", dry_run=True)
    assert planned.status == "would-remove" and planned.dry_run is True
    assert sorted(planned.objects) == sorted(f"{kind}/scaler-staging" for kind in KINDS)
    assert set(live_objects(settings)) == set(KINDS)  # the server checked each deletion and made none
    removed = undeploy(settings, "staging")
    assert removed.status == "removed" and sorted(removed.objects) == sorted(planned.objects)
    assert live_objects(settings) == {}


def test_a_failed_first_deploy_leaves_nothing_behind(project, tmp_path):
    settings = project(repository="ml/broken-scaler")  # the test server's pods crash
    with pytest.raises(DeployError, match="rollout of scaler-staging failed") as failed:
        deploy(settings, log_run(settings, tmp_path, "4").id, "staging", timeout=8)
    assert "nothing ran before" in str(failed.value) and "Service/scaler-staging removed" in str(failed.value)
    assert live_objects(settings) == {}


def test_a_refusal_found_by_the_dry_run_writes_nothing(tmp_path, registry, scratch_base, monkeypatch):
    """The server validates (and authorises) every object by dry run before vci writes any of them."""
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    server = start_kube_server(
        namespaces=("ml-staging",), forbid=[Forbid(verb="patch", resource="horizontalpodautoscalers")]
    )
    try:
        write_config(tmp_path, server.kubeconfig(tmp_path / "kc"), f"{registry.host}/ml/scaler", scratch_base)
        settings = load_settings(cwd=tmp_path, environ={})
        first = deploy(settings, log_run(settings, tmp_path, "5").id, "staging", timeout=60)
        before = live_objects(settings)
        write_config(
            tmp_path, server.kubeconfig(tmp_path / "kc"), f"{registry.host}/ml/scaler", scratch_base, **AUTOSCALED
        )
        settings = load_settings(cwd=tmp_path, environ={})
        with pytest.raises(AuthError, match="patch HorizontalPodAutoscaler ml-staging/scaler-staging"):
            deploy(settings, log_run(settings, tmp_path, "6").id, "staging", timeout=60)
        after = live_objects(settings)
        assert after == before and image_of(after["Deployment"]) == first.image  # not even a resourceVersion
    finally:
        server.stop()


def test_a_failure_after_the_deployment_is_written_puts_everything_back(project, tmp_path, monkeypatch):
    settings = project()
    first = deploy(settings, log_run(settings, tmp_path, "7").id, "staging", timeout=60)
    before = live_objects(settings)
    real = Cluster.server_apply

    def hpa_write_fails(self, obj, *, dry_run=False, force=False):  # e.g. the connection drops
        if obj["kind"] == "HorizontalPodAutoscaler" and not dry_run:
            raise DeployError(
                "patch HorizontalPodAutoscaler ml-staging/scaler-staging failed (500): etcdserver: request timed out"
            )
        return real(self, obj, dry_run=dry_run, force=force)

    monkeypatch.setattr(Cluster, "server_apply", hpa_write_fails)
    settings = project(**AUTOSCALED)
    with pytest.raises(DeployError, match="request timed out; .*rolled back to") as failed:
        deploy(settings, log_run(settings, tmp_path, "8").id, "staging", timeout=60)
    assert f"rolled back to {first.image}" in str(failed.value)
    after = live_objects(settings)
    assert set(after) == set(before) and image_of(after["Deployment"]) == first.image
    assert after["Deployment"]["spec"]["replicas"] == before["Deployment"]["spec"]["replicas"]
    vci_notes = [
        {k: v for k, v in o["Deployment"]["metadata"]["annotations"].items() if k.startswith("vci.dev/")}
        for o in (before, after)
    ]
    assert vci_notes[0] == vci_notes[1] and vci_notes[0]["vci.dev/release-id"] == first.release_id


def test_pod_annotations_and_labels_of_the_environment_reach_the_pods(project, tmp_path):
    settings = project(pod_annotations={"sidecar.istio.io/inject": "true"}, pod_labels={"team": "search"})
    deploy(settings, log_run(settings, tmp_path, "9").id, "staging", timeout=60)
    template = live_objects(settings)["Deployment"]["spec"]["template"]["metadata"]
    assert template["annotations"]["sidecar.istio.io/inject"] == "true" and template["labels"]["team"] == "search"
