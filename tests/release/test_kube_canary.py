"""The Kubernetes canary's pure parts: the canary Deployment beside the stable one behind one Service,
sized by the step, valid against the real schemas; and the promotion gates that need no cluster.
(Promotions against the API test server are in test_kube_release.py.)"""

import pytest

from vci.config import load_settings
from vci.deploy.kube import KubeTarget
from vci.deploy.manifests import render
from vci.errors import UsageError
from vci.release.canary import canary_replicas
from vci.release.promote import check_environments, choose_strategy, require_approval

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
    assert not matches(
        stable["spec"]["selector"]["matchLabels"], pods
    )  # the stable ReplicaSet never adopts it
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
        choose_strategy("blue-green", dst)
