"""The Kubernetes canary: the canary Deployment beside the stable one behind one Service, sized by the
step, valid against the real schemas; the promotion gates that need no cluster; and the step driver on the
API test server, whose simulated pods answer the proxies as vci model servers do (ModelPods below), while
the stable Deployment is resized in the middle of a step as its HPA would. (Promotions with real
model-server pods are in test_kube_release.py.)"""

import json
import sys
import threading
from pathlib import Path

import pytest

from vci.config import load_settings
from vci.deploy.kube import KubeTarget
from vci.deploy.manifests import canary_replicas, render
from vci.errors import DeployError, UsageError
from vci.release.promote import check_environments, choose_strategy, require_approval

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from images import scratch_base_layout  # noqa: E402
from registry import RegistryServer  # noqa: E402
from tests.fakes.kube import start_kube_server  # noqa: E402
from tests.fakes.kube.status import ApiError  # noqa: E402
from vci.deploy import deploy  # noqa: E402
from vci.release.canary import CanaryPolicy, run_steps  # noqa: E402
from vci.serve.metrics import CONTENT_TYPE, Metrics  # noqa: E402

from .conftest import make_run  # noqa: E402

DIGEST = "sha256:" + "c" * 64
ENVS = {
    "staging": {
        "target": "kubernetes",
        "repository": "reg.example/ml/iris-staging",
        "namespace": "ml-staging",
    },
    "production": {
        "target": "kubernetes",
        "repository": "reg.example/ml/iris",
        "namespace": "ml-prod",
        "replicas": 4,
        "requires_approval": True,
        "strategy": "canary",
    },
}


@pytest.fixture()
def target(tmp_path):
    settings = load_settings({"project": "iris", "environments": ENVS, "store": str(tmp_path)}, environ={})
    return KubeTarget(settings, settings.environment("production"))


def matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_canary_deployment_sits_behind_the_stable_service(target):
    image = {
        "image": f"reg.example/ml/iris@{DIGEST}",
        "run_id": "20261124-000000-abcd",
        "model_digest": DIGEST,
    }
    stable, service = render(target.spec(image, "r-stable"))[:2]
    canary = target.canary_deployment(image, "r-canary", canary_replicas(4, 10))
    assert canary["metadata"]["name"] == "iris-production-canary" and canary["spec"]["replicas"] == 1
    assert canary["metadata"]["annotations"]["vci.dev/release-id"] == "r-canary"
    pods = canary["spec"]["template"]["metadata"]["labels"]
    assert pods["vci.dev/track"] == "canary" and matches(canary["spec"]["selector"]["matchLabels"], pods)
    assert matches(service["spec"]["selector"], pods)  # the Service sends the canary its share
    assert matches(service["spec"]["selector"], stable["spec"]["template"]["metadata"]["labels"])
    assert not matches(stable["spec"]["selector"]["matchLabels"], pods)  # the stable ReplicaSet never adopts it
    import kubernetes_validate

    kubernetes_validate.validate(canary, kubernetes_validate.latest_version(), strict=True)


def test_canary_share_follows_the_steps(target):
    shares = {w: canary_replicas(4, w) / (canary_replicas(4, w) + 4) for w in (10, 25, 50)}
    assert shares == {10: 0.2, 25: 0.2, 50: 0.5}  # 1 of 5 pods at small steps (at least one), half at 50
    assert canary_replicas(19, 5) == 1 and canary_replicas(20, 50) == 20


def test_cluster_promotion_gates_without_a_cluster(target):
    settings = target.settings
    src, dst = check_environments(settings, "staging", "production")
    assert choose_strategy(None, dst) == "canary" and choose_strategy("direct", dst) == "direct"
    with pytest.raises(UsageError, match="requires an approval"):
        require_approval(dst, None)
    require_approval(dst, "alice")
    with pytest.raises(UsageError, match="onto itself"):
        check_environments(settings, "production", "production")
    with pytest.raises(UsageError, match="unknown strategy"):
        choose_strategy("rolling", dst)


class ModelPods:
    """The test server's proxy fallback: each simulated pod answers /predict (echo) and /metrics from a
    real server Metrics object of its own; ``on_scrape(pod)`` runs before each /metrics answer, and pods
    named in ``unreachable`` answer as the real proxy does when a pod refuses the connection."""

    def __init__(self):
        self.metrics, self.unreachable, self.on_scrape = {}, set(), None
        self.lock = threading.Lock()

    def __call__(self, pod, method, path, query, headers, body):
        name = pod["metadata"]["name"]
        with self.lock:
            metrics = self.metrics.setdefault(name, Metrics(("/predict", "/metrics")))
        if name in self.unreachable:
            self.unreachable.discard(name)
            raise ApiError(503, "ServiceUnavailable", f"error trying to reach service: dial tcp {name}: refused")
        if path == "/metrics":
            if self.on_scrape is not None:
                self.on_scrape(pod)
            return 200, {"Content-Type": CONTENT_TYPE}, metrics.render()
        metrics.started()
        metrics.finished(path, 200, 0.003)
        return 200, {"Content-Type": "application/json"}, json.dumps(json.loads(body)).encode()

    def answered(self, track: str, pods: dict) -> int:
        """Model requests the pods of ``track`` answered (``pods``: name -> pod labels)."""
        return sum(
            int(line.rsplit(" ", 1)[1])
            for name, m in self.metrics.items()
            if pods.get(name, {}).get("vci.dev/track") == track
            for line in m.render().decode().splitlines()
            if line.startswith("vci_requests_total")
        )


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    root = tmp_path_factory.mktemp("kube-canary")
    kube = start_kube_server(namespaces=("ml-staging", "ml-prod"), ready_delay=0.1)
    kube.proxy.fallback = ModelPods()
    try:
        with RegistryServer(root / "registry") as reg:
            yield kube, reg, scratch_base_layout(root / "base")
    finally:
        kube.stop()


@pytest.fixture()
def autoscaled(simulated, tmp_path, monkeypatch):
    """A production environment whose stable Deployment an HPA sizes (2..8), on simulated pods."""
    kube, reg, base = simulated
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    envs = {
        "production": {
            "target": "kubernetes",
            "namespace": "ml-prod",
            "repository": f"{reg.host}/ml/iris",
            "kubeconfig": str(kube.kubeconfig(tmp_path / "kubeconfig")),
            "base_image": base,
            "replicas": 2,
            "resources": {"cpu": "100m", "memory": "64Mi"},
            "autoscaling": {"min_replicas": 2, "max_replicas": 8},
        }
    }
    settings = load_settings({"project": "iris", "environments": envs, "store": str(tmp_path / "store")}, environ={})
    target = KubeTarget(settings, settings.environment("production"))
    deploy(settings, target.resolve_image(make_run(settings, tmp_path, 2).id)["image"], "production", timeout=30)
    yield settings, target, kube.proxy.fallback
    target.remove_canary()
    target.undeploy()


def pod_labels(target) -> dict:
    return {p.metadata.name: p.metadata.labels for p in target.cluster.core.list_namespaced_pod("ml-prod").items}


def test_the_canary_follows_the_stable_size_and_reports_the_share_it_served(autoscaled, tmp_path):
    settings, target, pods = autoscaled
    image = target.resolve_image(make_run(settings, tmp_path, 3).id)["image"]
    canary = target.start_canary(image, release_id="r-canary", timeout=30)
    scrapes = []

    def autoscale(pod):  # the HPA scales the stable Deployment to 6 in the middle of the step
        scrapes.append(pod["metadata"]["name"])
        if len(scrapes) == 4:
            target.cluster.apps.patch_namespaced_deployment_scale(
                "iris-production", "ml-prod", {"spec": {"replicas": 6}}
            )

    pods.on_scrape = autoscale
    try:
        verdict = run_steps(canary, CanaryPolicy(steps=(50, 100), interval=3.0, min_requests=30), [[1], [2]])
    finally:
        pods.on_scrape = None
    step = verdict["steps"][0]
    assert verdict["passed"], verdict["reason"]
    assert target.canary_status()["spec"]["replicas"] == 6  # 50 % of the endpoints again, after the HPA
    labels = pod_labels(target)
    # pods added in the step count from their first scrape (as new series in a Prometheus range)
    for track in ("canary", "stable"):
        assert pods.answered(track, labels) - 4 <= step["requests"][track] <= pods.answered(track, labels)
    assert step["served"] == round(step["requests"]["canary"] / sum(step["requests"].values()), 3)
    assert 0.3 < step["served"] < 0.7 and f"canary served {step['served']:.0%}" in step["reason"]


def test_a_canary_pod_that_misses_a_scrape_keeps_its_counts(autoscaled, tmp_path):
    settings, target, pods = autoscaled
    canary = target.start_canary(
        target.resolve_image(make_run(settings, tmp_path, 4).id)["image"], release_id="r-c2", timeout=30
    )
    first = canary.metrics()
    assert list(first) == [n for n, lb in pod_labels(target).items() if lb["vci.dev/track"] == "canary"]
    canary.send([[1]] * 12, 50)
    pods.unreachable.update(first)  # the next scrape of each canary pod fails once
    assert canary.metrics() == {}
    verdict = run_steps(canary, CanaryPolicy(steps=(50, 100), interval=0.5, min_requests=5), [[1]])
    assert verdict["passed"] and verdict["steps"][0]["requests"]["canary"] >= 5, verdict["reason"]


def test_pods_that_never_become_ready_can_always_be_evicted(autoscaled):
    _, target, _ = autoscaled
    pdb = target.cluster.read("PodDisruptionBudget", "iris-production", "ml-prod")
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow" and pdb["spec"]["maxUnavailable"] == 1
    bad = {
        **pdb,
        "metadata": {"name": "other", "namespace": "ml-prod"},
        "spec": {**pdb["spec"], "unhealthyPodEvictionPolicy": "Never"},
    }
    with pytest.raises(DeployError, match='Unsupported value: "Never"'):  # the test server checks it as the real one
        target.cluster.server_apply(bad)


def test_a_canary_name_too_long_is_refused_before_anything_is_copied(simulated, tmp_path, monkeypatch):
    from vci.oci.registry import RegistryClient
    from vci.release.promote import promote

    kube, reg, base = simulated
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    project = "fraud-detection-gradient-boosted-ensemble-v2eu"  # + "-production": 57 characters, + "-canary": 64
    common = {"target": "kubernetes", "kubeconfig": str(kube.kubeconfig(tmp_path / "kubeconfig")), "base_image": base}
    envs = {
        "staging": {**common, "namespace": "ml-staging", "repository": f"{reg.host}/ml/long-staging"},
        "production": {**common, "namespace": "ml-prod", "repository": f"{reg.host}/ml/long", "strategy": "canary"},
    }
    settings = load_settings({"project": project, "environments": envs, "store": str(tmp_path / "store")}, environ={})
    assert len(f"{project}-production") <= 63 < len(f"{project}-production-canary")
    first = deploy(settings, make_run(settings, tmp_path, 2, expected=False).id, "staging", timeout=30)
    promote(settings, "staging", "production", digest=first.digest)  # nothing ran there: direct
    second = deploy(settings, make_run(settings, tmp_path, 3, expected=False).id, "staging", timeout=30)
    before = KubeTarget(settings, settings.environment("production")).status()
    try:
        with pytest.raises(UsageError) as refused:
            promote(settings, "staging", "production", digest=second.digest)
        with pytest.raises(Exception, match="(?i)unknown|not found"):
            RegistryClient(reg.host).get_manifest("ml/long", second.digest)  # nothing was copied
        assert "canary Deployment would be named" in str(refused.value) and "(64 characters)" in str(refused.value)
        after = KubeTarget(settings, settings.environment("production")).status()
        assert after.digest == before.digest == first.digest and after.canary is None
    finally:
        for env in ("staging", "production"):
            KubeTarget(settings, settings.environment(env)).undeploy()


def test_a_node_drain_can_evict_pods_that_never_became_ready(simulated, tmp_path, monkeypatch):
    """Eviction (what `kubectl drain` does) under vci's PDB, on the test server's disruption controller."""
    from kubernetes.client.rest import ApiException

    kube, reg, base = simulated
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    envs = {
        "staging": {
            "target": "kubernetes",
            "namespace": "ml-staging",
            "base_image": base,
            "replicas": 3,
            "repository": f"{reg.host}/ml/unready",  # simulated pods of it run, never Ready
            "kubeconfig": str(kube.kubeconfig(tmp_path / "kubeconfig")),
        }
    }
    settings = load_settings({"project": "drain", "environments": envs, "store": str(tmp_path / "store")}, environ={})
    target = KubeTarget(settings, settings.environment("staging"))
    deploy(settings, make_run(settings, tmp_path, 2).id, "staging", wait=False)
    core = target.cluster.core
    try:

        def running():
            pods = core.list_namespaced_pod("ml-staging", label_selector="app.kubernetes.io/name=drain").items
            pdb = target.cluster.read("PodDisruptionBudget", "drain-staging", "ml-staging") or {}
            settled = (pdb.get("status") or {}).get("expectedPods") == 3
            return settled and [p.metadata.name for p in pods if p.status.phase == "Running"]

        pods = wait_for(running, 30)
        status = target.cluster.read("PodDisruptionBudget", "drain-staging", "ml-staging")["status"]
        assert (status["currentHealthy"], status["desiredHealthy"], status["disruptionsAllowed"]) == (0, 2, 0)
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"namespace": "ml-staging"}}
        core.create_namespaced_pod_eviction(pods[0], "ml-staging", {**eviction, "metadata": {"name": pods[0]}})
        assert pods[0] not in [
            p.metadata.name for p in core.list_namespaced_pod("ml-staging").items if not p.metadata.deletion_timestamp
        ]  # evicted: gone, or terminating gracefully
        target.cluster.apis["PolicyV1Api"].patch_namespaced_pod_disruption_budget(
            "drain-staging", "ml-staging", {"spec": {"unhealthyPodEvictionPolicy": "IfHealthyBudget"}}
        )
        wait_for(
            lambda: (lambda pdb: pdb["status"].get("observedGeneration") == pdb["metadata"]["generation"])(
                target.cluster.read("PodDisruptionBudget", "drain-staging", "ml-staging")
            ),
            10,
        )
        with pytest.raises(ApiException) as refused:  # the default policy: the drain is blocked
            core.create_namespaced_pod_eviction(pods[1], "ml-staging", {**eviction, "metadata": {"name": pods[1]}})
        assert refused.value.status == 429
        assert "needs 2 healthy pods and has 0 currently" in refused.value.body
    finally:
        target.undeploy()


def wait_for(condition, timeout: float):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")
