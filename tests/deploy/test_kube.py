"""Deploying to Kubernetes against the API test server: apply, idempotency, conflicts, rollback, errors."""

import json
import os
import subprocess
import sys

import pytest

import vci
from tests.build.models import Scaler
from tests.fakes.kube import Forbid, start_kube_server
from vci.config import load_settings
from vci.deploy import deploy, status, target_for, undeploy
from vci.errors import AuthError, ConfigError, DeployError, UsageError

from .conftest import write_config


@pytest.fixture()
def settings(tmp_path, monkeypatch, kube, registry, scratch_base):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig")
    write_config(tmp_path, kubeconfig, f"{registry.host}/ml/scaler", scratch_base)
    yield load_settings(cwd=tmp_path, environ={})


def log_run(settings, tmp_path, factor="2"):
    (tmp_path / "factor.txt").write_text(factor)
    run = vci.init("scaler", settings=settings)
    run.log_artifact("factor", tmp_path / "factor.txt")
    run.log_model(Scaler, artifacts=["factor"])
    run.commit()
    return run


def live_deployment(settings):
    target = target_for(settings, "staging")
    return target.cluster.read("Deployment", "scaler-staging", "ml-staging")


def test_deploy_run_packages_pushes_applies_and_waits(settings, tmp_path, registry):
    run = log_run(settings, tmp_path)
    result = deploy(settings, run.id, "staging", timeout=60)
    assert result.status == "deployed" and result.image.startswith(f"{registry.host}/ml/scaler@sha256:")
    assert result.changes["Deployment/scaler-staging"] == "created"
    assert set(result.changes) == {
        "Deployment/scaler-staging",
        "Service/scaler-staging",
        "PodDisruptionBudget/scaler-staging",
        "NetworkPolicy/scaler-staging",
    }
    live = live_deployment(settings)
    assert live["metadata"]["annotations"]["vci.dev/release-id"] == result.release_id
    assert live["metadata"]["annotations"]["vci.dev/run-id"] == run.id
    assert live["status"]["availableReplicas"] == 2
    version = live["metadata"]["resourceVersion"]

    again = deploy(settings, result.image, "staging", timeout=60)  # the same digest, by reference
    assert again.status == "unchanged" and again.release_id == result.release_id
    assert live_deployment(settings)["metadata"]["resourceVersion"] == version
    st = status(settings, "staging")
    assert st.state == "ready" and st.digest == result.digest and st.run_id == run.id
    assert undeploy(settings, "staging").status == "removed"
    assert live_deployment(settings) is None
    again = undeploy(settings, "staging")  # nothing to stop is not an error (a CI cleanup step)
    assert again.to_json() == {"environment": "staging", "status": "not-deployed"}


def pods_release(settings) -> str | None:
    env = live_deployment(settings)["spec"]["template"]["spec"]["containers"][0]["env"]
    return next((e["value"] for e in env if e["name"] == "VCI_RELEASE_ID"), None)


def test_pods_report_the_release_that_started_them(settings, tmp_path, kube, registry, scratch_base):
    """VCI_RELEASE_ID (the metrics' release label) is the release whose rollout started the pods: a release
    that restarts no pod (the same digest, other replicas) leaves it, one that rolls new pods sets its own."""
    first = deploy(settings, log_run(settings, tmp_path, "3").id, "staging", timeout=60)
    assert pods_release(settings) == first.release_id
    write_config(tmp_path, kube.kubeconfig(tmp_path / "kubeconfig"), f"{registry.host}/ml/scaler", scratch_base,
                 replicas=3)  # fmt: skip
    settings = load_settings(cwd=tmp_path, environ={})
    template = live_deployment(settings)["spec"]["template"]
    scaled = deploy(settings, first.image, "staging", timeout=60)
    assert scaled.status == "deployed" and scaled.release_id != first.release_id
    live = live_deployment(settings)
    assert live["spec"]["replicas"] == 3 and live["spec"]["template"] == template  # no pod restarted
    assert live["metadata"]["annotations"]["vci.dev/release-id"] == scaled.release_id
    assert pods_release(settings) == first.release_id
    write_config(tmp_path, kube.kubeconfig(tmp_path / "kubeconfig"), f"{registry.host}/ml/scaler", scratch_base,
                 replicas=3, env={"LOG_LEVEL": "debug"})  # fmt: skip
    settings = load_settings(cwd=tmp_path, environ={})
    restarted = deploy(settings, first.image, "staging", timeout=60)  # the same digest, new pods: its own id
    assert pods_release(settings) == restarted.release_id != scaled.release_id
    second = deploy(settings, log_run(settings, tmp_path, "4").id, "staging", timeout=60)
    assert pods_release(settings) == second.release_id
    undeploy(settings, "staging")


def test_dry_run_shows_a_diff_and_changes_nothing(settings, tmp_path):
    first = deploy(settings, log_run(settings, tmp_path, "3").id, "staging", timeout=60)
    version = live_deployment(settings)["metadata"]["resourceVersion"]
    plan = deploy(settings, log_run(settings, tmp_path, "4").id, "staging", dry_run=True)
    assert plan.status == "would-deploy" and plan.previous == first.image
    assert f"-  {first.image}" in plan.diff or first.image in plan.diff
    assert "+" in plan.diff and plan.image in plan.diff
    assert live_deployment(settings)["metadata"]["resourceVersion"] == version
    undeploy(settings, "staging")


def test_broken_rollout_is_rolled_back_and_explained(settings, tmp_path, registry, scratch_base):
    good = deploy(settings, log_run(settings, tmp_path, "5").id, "staging", timeout=60)
    # the test server's pods crash when their image name says "broken": push the next run there
    write_config(tmp_path, tmp_path / "kubeconfig", f"{registry.host}/ml/broken-scaler", scratch_base)
    broken_settings = load_settings(cwd=tmp_path, environ={})
    with pytest.raises(DeployError) as err:
        deploy(broken_settings, log_run(broken_settings, tmp_path, "6").id, "staging", timeout=8)
    message = str(err.value)
    assert "rollout of scaler-staging failed" in message and "CrashLoopBackOff" in message
    assert f"rolled back to {good.image}" in message
    live = live_deployment(settings)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == good.image
    assert live["metadata"]["annotations"]["vci.dev/release-id"] == good.release_id
    assert status(settings, "staging").state == "ready"
    undeploy(settings, "staging")


def test_other_writers_keep_their_fields_and_vci_takes_back_its_own(settings, tmp_path, caplog):
    """Server-side apply as manager vci: what a mesh or platform team sets survives a release; a field vci
    sets that another writer changed is reported and taken back (a PUT-based deploy wiped the first)."""
    first = deploy(settings, log_run(settings, tmp_path, "7").id, "staging", timeout=60)
    apps = target_for(settings, "staging").cluster.apps
    live = apps.read_namespaced_deployment("scaler-staging", "ml-staging")
    live.metadata.annotations["sidecar.example.com/inject"] = "true"
    live.spec.template.metadata.annotations["vault.example.com/agent-inject"] = "true"
    live.spec.template.spec.tolerations = [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    live.spec.template.spec.containers[0].image = first.image.replace("/scaler@", "/hijacked@")
    apps.replace_namespaced_deployment("scaler-staging", "ml-staging", live, field_manager="platform")
    with caplog.at_level("WARNING", logger="vci"):
        second = deploy(settings, log_run(settings, tmp_path, "8").id, "staging", timeout=60)
    assert second.changes["Deployment/scaler-staging"] == "updated"
    assert 'conflict with "platform"' in caplog.text and "takes them over" in caplog.text
    after = live_deployment(settings)
    pod = after["spec"]["template"]
    assert pod["spec"]["containers"][0]["image"] == second.image
    assert after["metadata"]["annotations"]["sidecar.example.com/inject"] == "true"
    assert pod["metadata"]["annotations"]["vault.example.com/agent-inject"] == "true"
    assert pod["spec"]["tolerations"] == [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert after["metadata"]["annotations"]["vci.dev/release-id"] == second.release_id
    undeploy(settings, "staging")


def test_bad_inputs_are_clear(settings, tmp_path, kube):
    with pytest.raises(UsageError, match="names a tag, not a digest"):
        deploy(settings, "127.0.0.1:5000/ml/scaler:latest", "staging")
    settings.environments["staging"].namespace = "ML_Staging"
    with pytest.raises(UsageError, match="invalid Kubernetes namespace"):
        deploy(settings, log_run(settings, tmp_path, "8").id, "staging")
    settings.environments["staging"].namespace = "ml-staging"
    settings.environments["staging"].resources = {"cpu": "lots"}
    with pytest.raises(UsageError, match="invalid resources: cpu: invalid quantity"):
        deploy(settings, log_run(settings, tmp_path, "8").id, "staging")
    settings.environments["staging"].resources = {}
    settings.environments["staging"].kubeconfig = str(tmp_path / "missing")
    os.environ.pop("KUBERNETES_SERVICE_HOST", None)
    with pytest.raises(ConfigError, match="no kubeconfig"):
        status(settings, "staging")


def test_forbidden_answers_are_auth_errors(tmp_path, registry, scratch_base, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    server = start_kube_server(namespaces=("ml-staging",), forbid=[Forbid(verb="create", resource="deployments")])
    try:
        write_config(tmp_path, server.kubeconfig(tmp_path / "kc"), f"{registry.host}/ml/scaler", scratch_base)
        s = load_settings(cwd=tmp_path, environ={})
        granting = r'grant vci-tester "create" on "deployments" \(API group "apps"\) in namespace ml-staging'
        with pytest.raises(AuthError, match="forbidden.*" + granting):
            deploy(s, log_run(s, tmp_path, "9").id, "staging", timeout=30)
        write_config(tmp_path, server.kubeconfig(tmp_path / "kc2", token="wrong"), "r/x", scratch_base)
        with pytest.raises(AuthError, match="rejected the credentials"):
            status(load_settings(cwd=tmp_path, environ={}), "staging")
    finally:
        server.stop()


def test_cli_render_and_kubectl_sees_the_deployment(settings, tmp_path, kube):
    run = log_run(settings, tmp_path, "10")
    env = {k: v for k, v in os.environ.items() if k != "VCI_DEBUG"}
    out = subprocess.run(
        [sys.executable, "-m", "vci", "render", run.id, "--env", "staging"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "kind: Deployment" in out.stdout and "@sha256:" in out.stdout and run.id in out.stdout
    deployed = subprocess.run(
        [sys.executable, "-m", "vci", "deploy", run.id, "--env", "staging", "-o", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert deployed.returncode == 0, deployed.stderr
    kubectl = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(tmp_path / "kubeconfig"),
            "-n",
            "ml-staging",
            "get",
            "deployments",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert kubectl.returncode == 0, kubectl.stderr
    names = [item["metadata"]["name"] for item in json.loads(kubectl.stdout)["items"]]
    assert "scaler-staging" in names
    undeploy(settings, "staging")


def test_user_flow_run_deploy_uses_the_cluster_when_the_default_environment_is_one(settings, tmp_path):
    run = log_run(settings, tmp_path, "11")
    result = run.deploy(wait=True, timeout=60)
    assert result.status == "deployed" and result.run_id == run.id
    assert status(settings).run_id == run.id
    model = run.get_deployed_model()
    assert model.url.endswith("/api/v1/namespaces/ml-staging/services/scaler-staging:http/proxy")
    undeploy(settings, "staging")


def test_the_environments_image_pull_secret_reaches_the_pod_spec(tmp_path, kube, registry, scratch_base):
    write_config(
        tmp_path,
        kube.kubeconfig(tmp_path / "kc"),
        f"{registry.host}/ml/scaler",
        scratch_base,
        image_pull_secret="registry-login",
    )
    target = target_for(load_settings(cwd=tmp_path, environ={}), "staging")
    spec = target.spec({"image": f"{registry.host}/ml/scaler@sha256:" + "ab" * 32}, None)
    from vci.deploy.manifests import render_deployment

    pod = render_deployment(spec)["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "registry-login"}]


def test_a_deploy_keeps_the_replicas_an_hpa_scaled_out_to(tmp_path, kube, registry, scratch_base, monkeypatch):
    """With autoscaling vci renders no replicas; a replace must not let the API server default them to 1."""
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    write_config(
        tmp_path,
        kube.kubeconfig(tmp_path / "kc"),
        f"{registry.host}/ml/scaler",
        scratch_base,
        autoscaling={"min_replicas": 2, "max_replicas": 8, "cpu": 70},
    )
    settings = load_settings(cwd=tmp_path, environ={})
    first = deploy(settings, log_run(settings, tmp_path, "3").id, "staging", timeout=60)
    apps = target_for(settings, "staging").cluster.apps
    # the HPA scales out through the scale subresource, as the real controller does once metrics arrive
    apps.patch_namespaced_deployment_scale("scaler-staging", "ml-staging", {"spec": {"replicas": 6}})
    wait_for(lambda: live_deployment(settings)["status"].get("availableReplicas") == 6, "6 available pods")
    second = deploy(settings, log_run(settings, tmp_path, "4").id, "staging", timeout=60)
    assert second.image != first.image and second.changes["Deployment/scaler-staging"] == "updated"
    live = live_deployment(settings)
    assert live["spec"]["replicas"] == 6 and live["status"]["availableReplicas"] == 6
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == second.image
    undeploy(settings, "staging")


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.parametrize("flag, expected", [(None, True), (False, False)])
def test_the_environments_insecure_setting_reaches_the_push(tmp_path, monkeypatch, flag, expected):
    """Before, ``insecure: true`` was read by promotions only: `vci deploy RUN_ID` pushed as if unset."""
    from vci.deploy import kube

    environments = {"staging": {"target": "kubernetes", "repository": "registry.internal/ml/iris", "insecure": True}}
    settings = load_settings({"project": "iris", "environments": environments}, cwd=tmp_path, environ={})
    pushed = []
    monkeypatch.setattr(kube, "resolve_run", lambda _settings, what: type("Run", (), {"id": what, "version": "v"}))
    monkeypatch.setattr(
        kube, "package", lambda _s, _run, options: pushed.append(options) or {"image": "registry.internal/x@sha256:1"}
    )
    kube.KubeTarget(settings, settings.environment("staging")).resolve_image("20260101-000000-abcd", insecure=flag)
    assert [o.insecure for o in pushed] == [expected] and pushed[0].push == ["registry.internal/ml/iris"]
