"""Policies between environments on local deployments: a soak before a digest leaves an environment, holds
after a rollback, and automatic promotion (``vci promote --auto``) of what has soaked and is not held."""

import json
import os
import subprocess
import sys
import time

import pytest

from vci.deploy import deploy, status
from vci.errors import ConfigError, UsageError, VerificationError
from vci.ledger import Ledger
from vci.release.auto import promote_auto
from vci.release.holds import Holds, list_holds, unhold
from vci.release.promote import promote
from vci.release.rollback import history, rollback
from vci.release.soak import Soak, clock, duration

from .conftest import make_run, release_settings, stop_all


@pytest.fixture()
def policies(settings, tmp_path):
    """Settings whose staging soaks for ``min_soak`` and whose production takes automatic promotions."""
    made = []

    def make(min_soak=None, auto=True):
        staging = {"min_soak": min_soak} if min_soak is not None else {}
        made.append(release_settings(tmp_path, {"staging": staging, "production": {"auto_promote": auto}}))
        return made[-1]

    yield make
    for each in made:
        stop_all(each)


def test_soak_words():
    assert [duration(s) for s in (0, 42, 119, 720, 1799, 3900)] == ["0s", "42s", "119s", "12m", "29m", "1h05m"]
    started = time.time() - 720
    soak = Soak("staging", "sha256:" + "a" * 64, 1800, started, started + 720)
    assert not soak.done and soak.promotable_at == started + 1800
    assert soak.reason() == f"soaked 12m of 30m in 'staging'; promotable after {clock(started + 1800)}"
    assert Soak("staging", "sha256:" + "a" * 64, 1800, started, started + 1800).done
    unproven = Soak("staging", "sha256:" + "a" * 64, 0, None, started, "r1")
    assert not unproven.done and "no ledger record of release r1" in unproven.reason()


def test_soak_refuses_a_promotion_until_the_digest_has_run_long_enough(policies, tmp_path):
    settings = policies("30m")
    run = make_run(settings, tmp_path, 2)
    deploy(settings, run.id, "staging")
    since = Ledger.for_settings(settings).get("staging", status(settings, "staging").release_id).timestamp
    with pytest.raises(VerificationError) as refused:
        promote(settings, "staging", "production", digest=run.version)
    message = str(refused.value)
    assert f"soaked 0s of 30m in 'staging'; promotable after {clock(since + 1800)}" in message, message
    assert refused.value.exit_code == 16
    assert status(settings, "production").state == "not-deployed"
    assert history(settings, "production")["releases"] == []  # refused before anything was claimed

    short = policies("2s")
    time.sleep(max(0.0, since + 2.05 - time.time()))
    done = promote(short, "staging", "production", digest=run.version)
    assert done["outcome"] == "succeeded" and status(short, "production").digest == run.version
    [record] = history(short, "production")["releases"]
    assert record["soak"]["done"] is True and record["soak"]["soaked"] >= 2 and record["soak"]["since"] == since


def test_soak_counts_from_the_release_that_put_the_digest_there(policies, tmp_path):
    settings = policies("2s")
    v1, v2 = make_run(settings, tmp_path, 2), make_run(settings, tmp_path, 3)
    deploy(settings, v1.id, "staging")
    time.sleep(2.1)
    assert deploy(settings, v1.id, "staging").status == "unchanged"  # the same digest again: its soak goes on
    assert promote(settings, "staging", "production", digest=v1.version)["outcome"] == "succeeded"
    deploy(settings, v2.id, "staging")
    with pytest.raises(VerificationError, match="soaked 0s of 2s"):  # a new digest soaks from its own deploy
        promote(settings, "staging", "production", digest=v2.version)
    assert status(settings, "production").digest == v1.version


def test_rollback_holds_the_digest_and_auto_promotion_skips_it_until_lifted(policies, tmp_path):
    settings = policies()
    v1, v2 = make_run(settings, tmp_path, 2), make_run(settings, tmp_path, 3)
    deploy(settings, v1.id, "staging")
    assert promote_auto(settings, "staging", "production")["outcome"] == "succeeded"
    deploy(settings, v2.id, "staging")
    assert promote_auto(settings, "staging", "production")["digest"] == v2.version
    back = rollback(settings, "production")
    assert back["digest"] == v1.version and back["held"] == v2.version
    [held] = list_holds(settings, "production")["holds"]
    assert held["digest"] == v2.version and held["hold_id"] == back["release_id"] and held["who"] == "tester"
    before = history(settings, "production")["releases"]

    skipped = promote_auto(settings, "staging", "production")
    assert (
        skipped["outcome"] == "held" and f"vci holds lift --env production --digest {v2.version}" in skipped["reason"]
    )
    assert status(settings, "production").digest == v1.version
    assert history(settings, "production")["releases"] == before  # a held digest writes nothing

    assert unhold(settings, "production", v2.version)["lifted"] == [back["release_id"]]
    assert list_holds(settings, "production")["holds"] == []
    again = promote_auto(settings, "staging", "production")
    assert again["outcome"] == "succeeded" and status(settings, "production").digest == v2.version
    assert promote_auto(settings, "staging", "production")["outcome"] == "unchanged"
    assert len(history(settings, "production")["releases"]) == len(before) + 1  # unchanged is not recorded


def test_a_held_digest_can_still_be_promoted_by_hand(policies, tmp_path):
    settings = policies()
    run = make_run(settings, tmp_path, 2)
    deploy(settings, run.id, "staging")
    Holds.for_settings(settings).add("production", run.version, "suspicious")
    assert promote_auto(settings, "staging", "production")["outcome"] == "held"
    assert promote(settings, "staging", "production", digest=run.version)["outcome"] == "succeeded"


def test_auto_promotion_waits_for_the_soak_and_needs_auto_promote(policies, tmp_path):
    settings = policies("30m")
    run = make_run(settings, tmp_path, 2)
    deploy(settings, run.id, "staging")
    waiting = promote_auto(settings, "staging", "production")
    assert waiting["outcome"] == "soaking" and "promotable after" in waiting["reason"]
    assert status(settings, "production").state == "not-deployed" and history(settings, "production")["releases"] == []
    manual = policies(auto=False)
    with pytest.raises(UsageError, match="'production' does not take automatic promotions"):
        promote_auto(manual, "staging", "production")


@pytest.mark.parametrize(
    "environment, fragment",
    [
        ({"auto_promote": True, "requires_approval": True}, "auto_promote and requires_approval contradict"),
        ({"min_soak": "soon"}, "min_soak is not a duration"),
        ({"min_soak": -1}, "min_soak must be at least 0s"),
        ({"analysis": {"prometheus": "prom:9090", "query": "up", "max": 1}}, "analysis.prometheus must be"),
        ({"analysis": {"prometheus": "http://p:9090", "query": "up"}}, "needs max (or min)"),
        ({"analysis": {"prometheus": "http://p:9090", "query": "up", "max": "1"}}, "analysis.max must be a number"),
        ({"analysis": {"prometheus": "http://p:9090", "qurey": "up"}}, "did you mean 'query'"),
    ],
)
def test_policy_settings_are_checked(tmp_path, environment, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        release_settings(tmp_path, {"production": environment})


def test_cli_auto_promotion_and_holds(policies, tmp_path):
    settings = policies()
    env = {**os.environ, "VCI_STORE": settings.store, "VCI_PROJECT": "demo", "VCI_PRODUCTION_AUTO_PROMOTE": "true"}

    def cli(*args, code=0):
        out = subprocess.run(
            [sys.executable, "-m", "vci", *args, "-o", "json"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert out.returncode == code, out.stderr
        return json.loads(out.stdout or out.stderr)

    run = make_run(settings, tmp_path, 2)
    deploy(settings, run.id, "staging")
    cli("holds", "add", "--env", "production", "--digest", run.version, "--reason", "wait for the audit")
    held = cli("promote", "--auto")
    assert held["outcome"] == "held" and "wait for the audit" in held["reason"]
    [shown] = cli("holds", "list", "--env", "production")["holds"]
    assert shown["reason"] == "wait for the audit"
    assert cli("holds", "lift", "--env", "production", "--digest", run.version)["lifted"] == [shown["hold_id"]]
    missing = cli("holds", "lift", "--env", "production", "--digest", run.version, code=6)
    assert missing["code"] == "not_found" and "is not held in 'production'" in missing["error"]
    assert cli("promote", "--auto")["outcome"] == "succeeded"
    assert "--digest" in cli("promote", code=2)["error"]
