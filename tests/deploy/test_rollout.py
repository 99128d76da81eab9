"""Watching a rollout as a real cluster reports it: the observed generation first, the progress deadline counted
from the last progress (not a fixed total), and pods that admission refuses (no pod is ever created)."""

import contextlib
import copy
import time

import pytest

import vci
from tests.build.models import Scaler
from tests.fakes.kube import start_kube_server
from vci.config import load_settings
from vci.deploy import deploy, target_for
from vci.deploy.rollout import rollout_state
from vci.errors import DeployError, NotFoundError

from .conftest import write_config

TIMED_OUT = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": 'ReplicaSet "web-abc" has timed out progressing.',
    "lastUpdateTime": "2026-12-01T08:00:00Z",
    "lastTransitionTime": "2026-12-01T08:00:00Z",
}


def deployment(generation=2, observed=2, conditions=(), want=2, **counts):
    status = {"observedGeneration": observed, "conditions": [dict(c) for c in conditions], **counts}
    return {"metadata": {"name": "web", "generation": generation}, "spec": {"replicas": want}, "status": status}


# -- the status as kubectl's DeploymentStatusViewer reads it -----------------------------------------------
def test_a_timed_out_condition_counts_only_once_the_new_generation_is_observed():
    stale = deployment(
        generation=3, observed=2, conditions=[TIMED_OUT], replicas=3, updatedReplicas=1, availableReplicas=2
    )
    assert rollout_state(stale) is None, "the controller has not seen the new template: keep waiting"
    observed = copy.deepcopy(stale)
    observed["status"]["observedGeneration"] = 3
    state = rollout_state(observed)
    assert state is not None and not state.ok and "progress deadline exceeded" in state.reason


def test_a_timed_out_condition_left_from_before_the_write_is_stale():
    """The controller keeps ProgressDeadlineExceeded when the new template's ReplicaSet already exists and
    the counts have not moved yet (a rollback, a redeploy of the previous version)."""
    before = deployment(
        generation=2, observed=2, conditions=[TIMED_OUT], want=1, replicas=2, updatedReplicas=1, availableReplicas=1
    )
    after = copy.deepcopy(before)
    after["metadata"]["generation"] = after["status"]["observedGeneration"] = 3
    assert rollout_state(after, before) is None
    renewed = copy.deepcopy(after)
    renewed["status"]["conditions"][0]["lastUpdateTime"] = "2026-12-01T08:05:00Z"  # the controller's new word
    assert rollout_state(renewed, before).ok is False


def test_done_means_updated_no_old_replicas_and_all_updated_available():
    assert rollout_state(deployment(replicas=2, updatedReplicas=2, availableReplicas=2)).ok
    assert rollout_state(deployment(replicas=2, updatedReplicas=2, availableReplicas=1)) is None
    assert rollout_state(deployment(replicas=2, updatedReplicas=1, availableReplicas=2)) is None
    assert rollout_state(deployment(replicas=3, updatedReplicas=2, availableReplicas=3)) is None  # an old pod


# -- against the API test server --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slow_kube():
    """Controllers that sync once a second: the time between a write and the controller's answer is visible."""
    server = start_kube_server(tls=True, namespaces=("ml-staging",), tick=1.0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def slow_settings(tmp_path, monkeypatch, slow_kube, registry, scratch_base):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    write_config(
        tmp_path,
        slow_kube.kubeconfig(tmp_path / "kubeconfig"),
        f"{registry.host}/ml/scaler",
        scratch_base,
        replicas=1,
        env={"FAKE_KUBE_BEHAVIOUR": "ok"},
    )
    yield load_settings(cwd=tmp_path, environ={})
    with contextlib.suppress(NotFoundError):
        target_for(load_settings(cwd=tmp_path, environ={}), "staging").undeploy()


def pushed_image(settings, tmp_path, factor="2") -> str:
    (tmp_path / "factor.txt").write_text(factor)
    run = vci.init("scaler", settings=settings)
    run.log_artifact("factor", tmp_path / "factor.txt")
    run.log_model(Scaler, artifacts=["factor"])
    run.commit()
    return target_for(settings, "staging").resolve_image(run.id)["image"]


def stall(settings, image: str) -> dict:
    """Deploy ``image`` with crashing pods without waiting, give it a 2 s deadline, wait until it exceeds it."""
    settings.environments["staging"].env = {"FAKE_KUBE_BEHAVIOUR": "crash"}
    deploy(settings, image, "staging", wait=False)
    apps = target_for(settings, "staging").cluster.apps
    apps.patch_namespaced_deployment("scaler-staging", "ml-staging", {"spec": {"progressDeadlineSeconds": 2}})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        live = target_for(settings, "staging").cluster.read("Deployment", "scaler-staging", "ml-staging")
        reasons = [c.get("reason") for c in (live.get("status") or {}).get("conditions") or []]
        if (
            "ProgressDeadlineExceeded" in reasons
            and live["status"].get("observedGeneration") == live["metadata"]["generation"]
        ):
            return live
        time.sleep(0.2)
    raise AssertionError("the stalled Deployment never exceeded its progress deadline")


def test_a_fix_deployed_onto_a_stalled_deployment_rolls_out(slow_settings, tmp_path):
    image = pushed_image(slow_settings, tmp_path)
    deploy(slow_settings, image, "staging")
    stall(slow_settings, image)
    slow_settings.environments["staging"].env = {"FIXED": "yes"}  # a new template: a new ReplicaSet
    result = deploy(slow_settings, image, "staging")
    assert result.status == "deployed"
    live = target_for(slow_settings, "staging").cluster.read("Deployment", "scaler-staging", "ml-staging")
    env = {e["name"]: e.get("value") for e in live["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env.get("FIXED") == "yes" and "FAKE_KUBE_BEHAVIOUR" not in env  # not rolled back to the broken one


def test_the_previous_version_redeployed_onto_a_stalled_deployment_rolls_out(slow_settings, tmp_path):
    """The template returns to an existing ReplicaSet: the controller keeps the old timed-out condition while
    the counts stand still, after it has observed the new generation."""
    image = pushed_image(slow_settings, tmp_path, "3")
    deploy(slow_settings, image, "staging")
    stall(slow_settings, image)
    slow_settings.environments["staging"].env = {}  # the first template: its ReplicaSet exists
    assert deploy(slow_settings, image, "staging").status == "deployed"
    live = target_for(slow_settings, "staging").cluster.read("Deployment", "scaler-staging", "ml-staging")
    env = {e["name"]: e.get("value") for e in live["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "FAKE_KUBE_BEHAVIOUR" not in env and live["status"].get("availableReplicas") == 1


def test_a_stalled_rollout_still_fails_and_is_rolled_back(slow_settings, tmp_path):
    image = pushed_image(slow_settings, tmp_path, "4")
    good = deploy(slow_settings, image, "staging")
    slow_settings.environments["staging"].env = {"FAKE_KUBE_BEHAVIOUR": "crash"}
    slow_settings.environments["staging"].progress_deadline = "2s"
    started = time.monotonic()
    with pytest.raises(DeployError) as err:
        deploy(slow_settings, image, "staging")
    assert "progress deadline exceeded" in str(err.value) and f"rolled back to {good.image}" in str(err.value)
    assert time.monotonic() - started < 20, "failed by the controller's deadline, not by a total of vci's"


# -- progress, not a fixed total --------------------------------------------------------------------------
@pytest.fixture()
def settings(tmp_path, monkeypatch, kube, registry, scratch_base):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    write_config(
        tmp_path,
        kube.kubeconfig(tmp_path / "kubeconfig"),
        f"{registry.host}/ml/scaler",
        scratch_base,
        replicas=6,
        progress_deadline="3s",
        env={"FAKE_KUBE_START_SECONDS": "1.0", "VERSION": "1"},
    )
    yield load_settings(cwd=tmp_path, environ={})
    with contextlib.suppress(NotFoundError):
        target_for(load_settings(cwd=tmp_path, environ={}), "staging").undeploy()


def test_a_rollout_longer_than_its_progress_deadline_succeeds_while_it_progresses(settings, tmp_path):
    """Six pods replaced one at a time (maxSurge 1, maxUnavailable 0), each taking a second to start: the
    rollout lasts well over its 3 s progress deadline, and passes because every step progresses in time."""
    image = pushed_image(settings, tmp_path, "5")
    deploy(settings, image, "staging")
    settings.environments["staging"].env["VERSION"] = "2"  # a new template, same image
    started = time.monotonic()
    assert deploy(settings, image, "staging").status == "deployed"
    took = time.monotonic() - started
    assert took > 2 * 3, f"the rollout took {took:.1f}s: not longer than its deadline, so this proves nothing"
    live = target_for(settings, "staging").cluster.read("Deployment", "scaler-staging", "ml-staging")
    assert live["spec"]["progressDeadlineSeconds"] == 3 and live["status"].get("updatedReplicas") == 6
    assert any(c["reason"] == "NewReplicaSetAvailable" for c in live["status"]["conditions"])


def test_an_overall_timeout_is_the_callers_choice(settings, tmp_path):
    image = pushed_image(settings, tmp_path, "6")
    good = deploy(settings, image, "staging")
    settings.environments["staging"].env["VERSION"] = "3"
    with pytest.raises(DeployError, match=r"not complete after 2s \(the overall timeout asked for\)") as err:
        deploy(settings, image, "staging", timeout=2)
    assert f"rolled back to {good.image}" in str(err.value)


# -- pods that admission refuses ---------------------------------------------------------------------------
def namespaced_settings(tmp_path, kube, registry, scratch_base, namespace, labels=None, quota=None, **staging):
    write_config(
        tmp_path,
        kube.kubeconfig(tmp_path / "kubeconfig"),
        f"{registry.host}/ml/scaler",
        scratch_base,
        namespace=namespace,
        **staging,
    )
    settings = load_settings(cwd=tmp_path, environ={})
    core = target_for(settings, "staging").cluster.core
    core.create_namespace({"metadata": {"name": namespace, "labels": labels or {}}})
    if quota:
        core.create_namespaced_resource_quota(namespace, {"metadata": {"name": "compute"}, "spec": {"hard": quota}})
    return settings


def test_a_quota_the_pods_cannot_meet_fails_the_rollout_at_once_and_says_why(
    tmp_path, monkeypatch, kube, registry, scratch_base
):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    settings = namespaced_settings(
        tmp_path, kube, registry, scratch_base, "ml-quota-limits", quota={"limits.cpu": "4"}, resources={}
    )
    image = pushed_image(settings, tmp_path, "7")
    started = time.monotonic()
    with pytest.raises(DeployError) as err:
        deploy(settings, image, "staging")  # the default progress deadline: 600 s
    message = str(err.value)
    assert time.monotonic() - started < 30, "an incurable refusal does not wait out the deadline"
    assert "the cluster refuses to create its pods" in message
    assert "failed quota: compute: must specify limits.cpu for: model" in message
    assert "event FailedCreate" in message and "no pod of the new version" not in message
    assert "nothing ran before" in message and "Deployment/scaler-staging removed" in message


def test_an_exhausted_quota_is_named_when_the_deadline_passes(tmp_path, monkeypatch, kube, registry, scratch_base):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    settings = namespaced_settings(
        tmp_path,
        kube,
        registry,
        scratch_base,
        "ml-quota-pods",
        quota={"pods": "2"},
        progress_deadline="2s",
        env={"VERSION": "1"},
    )
    image = pushed_image(settings, tmp_path, "8")
    good = deploy(settings, image, "staging")  # two pods: the quota is full, no room for the surge pod
    settings.environments["staging"].env = {"VERSION": "2"}
    with pytest.raises(DeployError) as err:
        deploy(settings, image, "staging")
    message = str(err.value)
    assert "progress deadline exceeded" in message and "exceeded quota: compute, requested: pods=1" in message
    assert f"rolled back to {good.image}" in message


def test_pods_vci_renders_pass_the_restricted_pod_security_level(tmp_path, monkeypatch, kube, registry, scratch_base):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    settings = namespaced_settings(
        tmp_path,
        kube,
        registry,
        scratch_base,
        "ml-restricted",
        labels={"pod-security.kubernetes.io/enforce": "restricted"},
    )
    assert deploy(settings, pushed_image(settings, tmp_path, "9"), "staging").status == "deployed"


# -- the pod's own shutdown -------------------------------------------------------------------------------
def test_pods_wait_before_sigterm_and_get_the_time_to_drain():
    import kubernetes_validate

    from vci.deploy.manifests import SERVER_DRAIN, DeploySpec, render_deployment
    from vci.serve.__main__ import parse_options

    assert parse_options([], env={})["drain_timeout"] == SERVER_DRAIN
    image = "registry.example.com/ml/iris@sha256:" + "ab" * 32
    pod = render_deployment(DeploySpec("iris", "staging", "ml", image))["spec"]["template"]["spec"]
    assert pod["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert pod["terminationGracePeriodSeconds"] == 5 + SERVER_DRAIN + 5
    kubernetes_validate.validate(
        render_deployment(DeploySpec("iris", "staging", "ml", image)), kubernetes_validate.latest_version(), strict=True
    )
    quick = render_deployment(
        DeploySpec("iris", "staging", "ml", image, prestop_delay=0, env={"VCI_DRAIN_TIMEOUT": "10"})
    )["spec"]["template"]["spec"]
    assert "lifecycle" not in quick["containers"][0] and quick["terminationGracePeriodSeconds"] == 15


def test_the_environment_sets_the_delays_in_seconds(tmp_path):
    import yaml

    (tmp_path / "vci.yaml").write_text(
        yaml.safe_dump(
            {
                "project": "iris",
                "environments": {
                    "staging": {"target": "kubernetes", "prestop_delay": "1500ms", "progress_deadline": "2m"}
                },
            }
        )
    )
    spec = target_for(load_settings(cwd=tmp_path, environ={}), "staging").spec({"image": "x"}, None, allow_tag=True)
    assert (spec.prestop_delay, spec.progress_deadline) == (2, 120)
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump({"environments": {"staging": {"prestop_delay": "soon"}}}))
    from vci.errors import ConfigError

    with pytest.raises(ConfigError, match="environments.staging.prestop_delay is not a duration: 'soon'"):
        load_settings(cwd=tmp_path, environ={})
