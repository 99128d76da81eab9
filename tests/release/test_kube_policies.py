"""Soak, holds and automatic promotion on the Kubernetes API test server with real model-server pods: the
soak is read from the release id the staging Deployment carries, a rollback holds the digest it leaves."""

import time

import pytest

from vci.deploy import status
from vci.errors import VerificationError
from vci.ledger import Ledger
from vci.release.auto import promote_auto
from vci.release.holds import list_holds, unhold
from vci.release.promote import promote
from vci.release.rollback import history, rollback

from .test_kube_release import cluster, settings, stage  # noqa: F401 (fixtures)


def test_soak_hold_and_auto_promotion_on_a_cluster(settings, tmp_path):  # noqa: F811
    production, staging = settings.environments["production"], settings.environments["staging"]
    production.requires_approval, production.auto_promote, staging.min_soak = False, True, "30m"
    _, first = stage(settings, tmp_path, 2)
    v1 = first.rsplit("@", 1)[1]
    since = Ledger.for_settings(settings).get("staging", status(settings, "staging").release_id).timestamp
    waiting = promote_auto(settings, "staging", "production", timeout=60)
    assert waiting["outcome"] == "soaking" and waiting["soak"]["since"] == since
    with pytest.raises(VerificationError, match=r"soaked \d+s of 30m in 'staging'; promotable after"):
        promote(settings, "staging", "production", digest=v1, timeout=60)
    assert status(settings, "production").state == "not-deployed"

    staging.min_soak = "1s"
    time.sleep(max(0.0, since + 1.05 - time.time()))
    assert promote_auto(settings, "staging", "production", timeout=60)["outcome"] == "succeeded"
    _, second = stage(settings, tmp_path, 3)
    v2 = second.rsplit("@", 1)[1]
    time.sleep(1.05)
    assert promote_auto(settings, "staging", "production", timeout=60)["digest"] == v2
    back = rollback(settings, "production", timeout=60)
    assert back["digest"] == v1 and status(settings, "production").digest == v1
    assert [h["digest"] for h in list_holds(settings, "production")["holds"]] == [v2]
    held = promote_auto(settings, "staging", "production", timeout=60)
    assert held["outcome"] == "held" and status(settings, "production").digest == v1

    unhold(settings, "production", v2)
    again = promote_auto(settings, "staging", "production", timeout=60)
    assert again["outcome"] == "succeeded" and status(settings, "production").digest == v2
    assert [(r["action"], r["digest"]) for r in history(settings, "production")["releases"]] == [
        ("promote", v2),
        ("rollback", v1),
        ("promote", v2),
        ("promote", v1),
    ]


def test_a_wave_failing_on_its_second_cluster_leaves_both_on_the_old_digest(settings, tmp_path):  # noqa: F811
    from vci.config import Environment
    from vci.deploy import target_for
    from vci.release.waves import promote_waves

    production = settings.environments["production"]
    production.requires_approval, production.strategy = False, "direct"
    us = Environment(
        "production-us",
        target="kubernetes",
        namespace="ml-staging",  # a second "cluster": its own namespace and objects on the test server
        kubeconfig=production.kubeconfig,
        base_image=production.base_image,
        repository=production.repository + "-us",
        strategy="canary",
        canary={"steps": [50, 100], "interval": 0.3, "min_requests": 3, "max_avg_latency_ms": 40, "step_timeout": 30},
    )
    settings.environments.update(
        {"production-us": us, "world": Environment("world", targets=["production", "production-us"])}
    )
    try:
        _, old = stage(settings, tmp_path, 2)
        first = promote_waves(settings, "staging", "world", timeout=60)
        assert first["outcome"] == "succeeded" and {w["outcome"] for w in first["waves"]} == {"succeeded"}
        _, slow = stage(settings, tmp_path, 2, delay=0.15)
        result = promote_waves(settings, "staging", "world", timeout=60)
        assert result["outcome"] == "rolled-back" and "wave 2 of 2 ('production-us')" in result["reason"]
        digests = {status(settings, name).digest for name in ("production", "production-us")}
        assert digests == {old.rsplit("@", 1)[1]}, result["reason"]  # both clusters on the old digest
        assert target_for(settings, "production-us").canary_status() is None
        [us_record, *_] = history(settings, "production-us")["releases"]
        assert us_record["outcome"] == "rolled-back" and us_record["digest"] == slow.rsplit("@", 1)[1]
        eu = history(settings, "production")["releases"]
        assert [(r["action"], r["release_id"]) for r in eu[:2]] == [
            ("rollback", eu[0]["release_id"]),
            ("promote", result["release_id"]),
        ]
    finally:
        target_for(settings, "production-us").undeploy()


def test_the_analysis_gate_reads_a_real_prometheus_scraping_the_cluster_pods(settings, tmp_path):  # noqa: F811
    from kubernetes.client import CoreV1Api

    from prometheus import PrometheusServer  # tests/ is on sys.path (test_kube_release puts it there)
    from vci.deploy import target_for
    from vci.errors import DeployError

    production = settings.environments["production"]
    production.requires_approval = False
    _, staged = stage(settings, tmp_path, 2)
    core = CoreV1Api(target_for(settings, "staging").cluster.api_client)
    pods = core.list_namespaced_pod("ml-staging", label_selector="vci.dev/environment=staging").items
    ports = [pod.metadata.annotations["fake.kube.vci.dev/host-port"] for pod in pods]
    assert ports, pods
    with PrometheusServer(tmp_path / "prometheus", {"staging": [f"127.0.0.1:{port}" for port in ports]}) as prom:
        prom.wait_for('sum(vci_model_ready{job="staging"}) >= 1')
        production.analysis = {"prometheus": prom.url, "query": 'sum(vci_model_ready{job="nothing"})', "min": 1}
        with pytest.raises(DeployError, match="the analysis gate failed: .* no data"):
            promote(settings, "staging", "production", digest=staged.rsplit("@", 1)[1], strategy="direct", timeout=60)
        assert status(settings, "production").state == "not-deployed"
        production.analysis = {"prometheus": prom.url, "query": 'sum(vci_model_ready{job="staging"})', "min": 1}
        done = promote(
            settings, "staging", "production", digest=staged.rsplit("@", 1)[1], strategy="direct", timeout=60
        )
        assert done["outcome"] == "succeeded" and done["gate"]["analysis"].endswith(f"= {len(ports)}, min 1")
