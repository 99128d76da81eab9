"""Releases on the Kubernetes API test server with real model-server pods: direct and canary promotions by
digest between two namespaces and repositories, a canary breaking a rule, concurrent promotions, rollback
by release id, and a ledger that shows every attempt.

The test server's process backend runs each pod through ``ModelPod`` (tests/deploy/serving.py): the
model server for the model inside the pod's image (found by the image digest the manifest sets in
``VCI_IMAGE_DIGEST``), on the pod's host port. The images are built on an empty base, so running them
with runc is not possible here (tests/deploy/test_kube_e2e.py does that with a Python base)."""

import sys
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from images import scratch_base_layout  # noqa: E402
from registry import RegistryServer  # noqa: E402
from tests.deploy.serving import MODEL_DIRS, ServePod  # noqa: E402
from tests.fakes.kube import start_kube_server  # noqa: E402
from vci.config import load_settings  # noqa: E402
from vci.deploy import deploy, status, target_for  # noqa: E402
from vci.errors import ConflictError, UsageError  # noqa: E402
from vci.oci.registry import RegistryClient  # noqa: E402
from vci.release.promote import promote  # noqa: E402
from vci.release.rollback import history, rollback  # noqa: E402

from .conftest import make_run  # noqa: E402

ModelPod = ServePod  # the pods of tests/deploy/serving.py: each the model server of its image's run


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("kube-release")
    kube = start_kube_server(namespaces=("ml-staging", "ml-prod"), backend="process", runner=ModelPod)
    try:
        with RegistryServer(root / "registry") as reg:
            yield kube, reg, scratch_base_layout(root / "base")
    finally:
        kube.stop()


CANARY = {
    "steps": [34, 100],
    "interval": 0.3,
    "max_error_rate": 0.05,
    "max_p90_latency_ms": 500,
    "min_requests": 6,
    "step_timeout": 60,
}


@pytest.fixture()
def settings(cluster, tmp_path, monkeypatch):
    kube, reg, base = cluster
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path.parent / "vci-cache"))
    monkeypatch.setenv("VCI_USER", "tester")
    kubeconfig = str(kube.kubeconfig(tmp_path / "kubeconfig"))
    common = {"target": "kubernetes", "kubeconfig": kubeconfig, "base_image": base}
    config = {
        "project": "iris",
        "store": str(tmp_path / "store"),
        "environments": {
            "staging": {**common, "namespace": "ml-staging", "repository": f"{reg.host}/ml/iris-staging"},
            "production": {
                **common,
                "namespace": "ml-prod",
                "repository": f"{reg.host}/ml/iris",
                "replicas": 2,
                "requires_approval": True,
                "canary": CANARY,
            },
        },
    }
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump(config))
    settings = load_settings(cwd=tmp_path, environ={})
    yield settings
    for env in ("staging", "production"):
        target = target_for(settings, env)
        target.remove_canary()
        for kind in ("Deployment", "Service", "PodDisruptionBudget"):
            target.cluster.delete(kind, f"iris-{env}", target.namespace)


def stage(settings, tmp_path, factor, **behaviour):
    """Log a run, deploy it to staging (package, push, apply, wait); return (run, staging image)."""
    run = make_run(settings, tmp_path, factor, **behaviour)
    image = target_for(settings, "staging").resolve_image(run.id)
    MODEL_DIRS[image["image"].rsplit("@", 1)[1]] = str(run.model_dir())
    deploy(settings, image["image"], "staging", timeout=60)
    return run, image["image"]


def test_direct_then_canary_promotion_then_rollback_by_release_id(settings, tmp_path, cluster):
    _, reg, _ = cluster
    v1, staged = stage(settings, tmp_path, 2)
    digest = staged.rsplit("@", 1)[1]
    with pytest.raises(UsageError, match="requires an approval"):
        promote(settings, "staging", "production")
    first = promote(settings, "staging", "production", strategy="direct", approved_by="alice", timeout=60)
    assert first["outcome"] == "succeeded" and first["digest"] == digest
    assert first["image"] == f"{reg.host}/ml/iris@{digest}"  # the same digest, in production's repository
    live = status(settings, "production")
    assert live.state == "ready" and live.image == first["image"] and live.release_id == first["release_id"]
    assert RegistryClient(reg.host).get_manifest("ml/iris", "production")[2] == digest
    assert target_for(settings, "production").client().predict([1, 2]) == [2, 4]
    assert promote(settings, "staging", "production", approved_by="alice")["outcome"] == "unchanged"

    v2, staged2 = stage(settings, tmp_path, 3)
    second = promote(settings, "staging", "production", strategy="canary", approved_by="bob", timeout=60)
    assert second["outcome"] == "succeeded", second["reason"]
    assert [s["weight"] for s in second["canary"]] == [34]
    assert status(settings, "production").digest == staged2.rsplit("@", 1)[1]
    assert target_for(settings, "production").canary_status() is None
    assert target_for(settings, "production").client().predict([1]) == [3]

    back = rollback(settings, "production", to=first["release_id"], timeout=60)
    assert back["digest"] == digest and status(settings, "production").image == first["image"]
    releases = history(settings, "production")["releases"]
    assert [(r["action"], r["outcome"], r["approver"]) for r in releases] == [
        ("rollback", "succeeded", None),
        ("promote", "succeeded", "bob"),
        ("promote", "unchanged", "alice"),
        ("promote", "succeeded", "alice"),
    ]
    assert releases[1]["transfer"]["mounted"] and not releases[1]["transfer"]["uploaded"]


def test_a_canary_breaking_the_error_rule_leaves_production_on_the_old_digest(settings, tmp_path):
    _, staged = stage(settings, tmp_path, 2)
    promote(settings, "staging", "production", strategy="direct", approved_by="alice", timeout=60)
    before = status(settings, "production")
    _, bad = stage(settings, tmp_path, 5, fail_after=3)
    result = promote(settings, "staging", "production", strategy="canary", approved_by="alice", timeout=60)
    assert result["outcome"] == "rolled-back" and "error rate" in result["reason"]
    after = status(settings, "production")
    assert after.image == before.image and after.release_id == before.release_id
    assert target_for(settings, "production").canary_status() is None
    latest = history(settings, "production")["releases"][0]
    assert latest["outcome"] == "rolled-back" and latest["digest"] == bad.rsplit("@", 1)[1]


def test_concurrent_cluster_promotions_one_wins(settings, tmp_path):
    _, staged = stage(settings, tmp_path, 7)
    barrier, outcomes = threading.Barrier(2), []

    def attempt():
        barrier.wait()
        try:
            outcomes.append(promote(settings, "staging", "production", approved_by="ci", timeout=60)["outcome"])
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(outcomes) == ["conflict", "succeeded"]
    assert status(settings, "production").digest == staged.rsplit("@", 1)[1]
    assert sorted(r["outcome"] for r in history(settings, "production")["releases"]) == [
        "failed",
        "succeeded",
    ]


def test_a_production_that_verifies_refuses_an_unsigned_image_and_takes_a_signed_one(
    settings, tmp_path, cluster, monkeypatch
):
    from vci.errors import VerificationError
    from vci.ledger import Ledger
    from vci.oci.evidence import read_evidence
    from vci.sign.keys import generate_key_pair, load_public_key

    _, reg, _ = cluster
    private, public = generate_key_pair(tmp_path / "keys")
    settings.environments["production"].verify = {"keys": [str(public)], "require": ["signature", "sbom", "provenance"]}
    monkeypatch.delenv("VCI_SIGNING_KEY_FILE", raising=False)
    monkeypatch.delenv("VCI_SIGNING_KEY", raising=False)
    _, unsigned = stage(settings, tmp_path, 2)
    before = status(settings, "production").digest
    with pytest.raises(VerificationError, match="is not signed"):
        promote(settings, "staging", "production", strategy="direct", approved_by="alice", timeout=60)
    with pytest.raises(VerificationError, match="is not signed"):
        deploy(settings, unsigned, "production", timeout=60)  # nor deployed by hand, by digest
    assert status(settings, "production").digest == before  # refused before anything changed

    monkeypatch.setenv("VCI_SIGNING_KEY_FILE", str(private))
    _, signed = stage(settings, tmp_path, 3)  # packaged (and so signed and attested) by the staging deploy
    digest = signed.rsplit("@", 1)[1]
    done = promote(settings, "staging", "production", strategy="direct", approved_by="alice", timeout=60)
    assert done["outcome"] == "succeeded" and status(settings, "production").digest == digest
    assert read_evidence(RegistryClient(reg.host), "ml/iris", digest, ".sig")  # the evidence moved with it
    assert len(read_evidence(RegistryClient(reg.host), "ml/iris", digest, ".att")) == 2
    assert not done["transfer"]["uploaded"]  # within one registry: mounts only
    record = Ledger.for_settings(settings).get("production", done["release_id"])
    assert record.extra["verified"]["signed_by"] == [load_public_key(public).key_id]
    assert len(record.extra["verified"]["attestations"]) == 2
