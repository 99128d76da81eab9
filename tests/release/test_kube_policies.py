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
