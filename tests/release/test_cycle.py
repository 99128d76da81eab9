"""The whole release cycle on the embedded default store with local deployments: deploy staging, test,
promote, idempotent re-promotion, rollback (previous and by id), history, and the CLI doing the same."""

import json
import os
import subprocess
import sys

import pytest

from vci.deploy import deploy, status
from vci.errors import ConflictError, DeployError, NotFoundError, UsageError
from vci.release.promote import promote
from vci.release.rollback import history, rollback
from vci.release.smoke import smoke_test

from .conftest import make_run, release_settings, stop_all


def test_deploy_test_promote_rollback_history(settings, tmp_path):
    v1 = make_run(settings, tmp_path, 2)
    deploy(settings, v1.id, "staging")
    assert smoke_test(settings, "staging")["passed"]
    first = promote(settings, "staging", "production")
    assert first["outcome"] == "succeeded" and first["digest"] == v1.version
    assert status(settings, "production").digest == v1.version
    assert status(settings, "production").release_id == first["release_id"]

    again = promote(settings, "staging", "production")
    assert again["outcome"] == "unchanged" and "nothing to do" in again["reason"]
    assert status(settings, "production").release_id == first["release_id"]  # not redeployed

    v2 = make_run(settings, tmp_path, 3)
    deploy(settings, v2.id, "staging")
    second = promote(settings, "staging", "production")
    assert second["previous"] == v1.version and status(settings, "production").digest == v2.version

    back = rollback(settings, "production")
    assert back["outcome"] == "succeeded" and back["digest"] == v1.version and back["restored"] == first["release_id"]
    assert status(settings, "production").digest == v1.version
    forward = rollback(settings, "production", to=second["release_id"])
    assert forward["digest"] == v2.version and status(settings, "production").digest == v2.version

    releases = history(settings, "production")["releases"]
    assert [(r["action"], r["outcome"]) for r in releases] == [
        ("rollback", "succeeded"),
        ("rollback", "succeeded"),
        ("promote", "succeeded"),
        ("promote", "unchanged"),
        ("promote", "succeeded"),
    ]
    assert releases[0]["release_id"] == forward["release_id"] and releases[0]["previous"] == v1.version
    assert all(r["who"] == "tester" and r["run_id"] for r in releases)
    staging = history(settings, "staging")["releases"]
    assert [(r["action"], r["digest"]) for r in staging] == [("deploy", v2.version), ("deploy", v1.version)]


def test_failed_smoke_test_blocks_promotion_and_is_recorded(settings, tmp_path):
    run = make_run(settings, tmp_path, 2)
    deploy(settings, run.id, "staging")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"inputs": [[1]], "expected_outputs": [[5]]}))
    result = smoke_test(settings, "staging", examples_file=wrong)
    assert not result["passed"] and result["failures"][0]["problem"] == "value"
    with pytest.raises(DeployError, match="smoke test of 'staging' failed"):
        promote(settings, "staging", "production", examples_file=wrong)
    assert status(settings, "production").state == "not-deployed"
    [record] = history(settings, "production")["releases"]
    assert record["outcome"] == "failed" and "smoke test" in record["reason"]


def test_approval_required_and_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/iris")
    monkeypatch.setenv("GITHUB_SHA", "abc123")
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    settings = release_settings(tmp_path, {"production": {"requires_approval": True}})
    try:
        deploy(settings, make_run(settings, tmp_path, 2).id, "staging")
        with pytest.raises(UsageError, match="requires an approval"):
            promote(settings, "staging", "production")
        assert status(settings, "production").state == "not-deployed"
        done = promote(settings, "staging", "production", approved_by="alice")
        [record] = history(settings, "production")["releases"]
        assert record["release_id"] == done["release_id"] and record["approver"] == "alice"
        assert record["who"] == "github:octocat" and record["ci"]["sha"] == "abc123"
        assert record["ci_url"] == "https://github.com/acme/iris/actions/runs/42"
    finally:
        stop_all(settings)


def test_refusals(settings, tmp_path):
    with pytest.raises(NotFoundError, match="nothing is deployed to 'staging'"):  # as predict or test would say
        promote(settings, "staging", "production")
    cluster = release_settings(tmp_path, {"production": {"target": "kubernetes", "repository": "r.example/x"}})
    with pytest.raises(UsageError, match="a local environment runs a run, a cluster runs an image"):
        promote(cluster, "staging", "production")
    with pytest.raises(NotFoundError, match="no earlier release"):
        rollback(settings, "production")
    run = make_run(settings, tmp_path, 2, examples=False)
    deploy(settings, run.id, "staging")
    with pytest.raises(UsageError, match="no logged examples"):
        smoke_test(settings, "staging")
    plan = promote(settings, "staging", "production", dry_run=True, examples_file=None)
    assert plan["outcome"] == "would-promote" and status(settings, "production").state == "not-deployed"


def test_cli_cycle(settings, tmp_path):
    env = {**os.environ, "VCI_STORE": settings.store, "VCI_PROJECT": "demo"}

    def cli(*args, code=0):
        out = subprocess.run(
            [sys.executable, "-m", "vci", *args, "-o", "json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == code, out.stderr
        return json.loads(out.stdout) if out.stdout else json.loads(out.stderr)

    v1, v2 = make_run(settings, tmp_path, 2), make_run(settings, tmp_path, 4)
    cli("deploy", v1.id, "--env", "staging")
    tested = cli("test", "--env", "staging")
    assert tested["passed"] is True and tested["digest"] == v1.version
    first = cli("promote", "--from", "staging", "--to", "production", "--digest", tested["digest"])
    assert set(first) >= {"from", "to", "digest", "release_id", "strategy", "outcome"}
    assert first["outcome"] == "succeeded" and first["digest"] == v1.version
    cli("deploy", v2.id, "--env", "staging")
    assert cli("promote", "--from", "staging", "--to", "production", "--digest", v2.version)["digest"] == v2.version
    assert cli("rollback", "--env", "production")["digest"] == v1.version
    assert cli("status", "--env", "production")["digest"] == v1.version
    releases = cli("history", "--env", "production")["releases"]
    assert [r["action"] for r in releases] == ["rollback", "promote", "promote"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"inputs": [[1]], "expected_outputs": [[[1]]]}))
    failed = cli("test", "--env", "production", "--examples", str(bad), code=13)
    assert failed["passed"] is False and failed["failures"][0]["problem"] == "shape"


def test_promote_refuses_a_digest_other_than_the_approved_one(settings, tmp_path):
    """A deploy to staging while the release manager approves must not change what ships."""
    env = {**os.environ, "VCI_STORE": settings.store, "VCI_CACHE_DIR": str(tmp_path / "cache")}
    v1, v2 = make_run(settings, tmp_path, 2), make_run(settings, tmp_path, 4)
    deploy(settings, v1.id, "staging")
    approved = status(settings, "staging").digest
    deploy(settings, v1.id, "production")
    deploy(settings, v2.id, "staging")  # meanwhile, another build deploys to staging
    before = history(settings, "production")["releases"]
    out = subprocess.run(
        [sys.executable, "-m", "vci", "promote", "--digest", approved, "-o", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == ConflictError.exit_code, out.stderr
    error = json.loads(out.stderr)
    assert error["code"] == "conflict" and approved in error["error"] and v2.version in error["error"]
    assert status(settings, "production").digest == v1.version
    assert history(settings, "production")["releases"] == before  # nothing recorded, nothing changed
    missing = subprocess.run(
        [sys.executable, "-m", "vci", "promote"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 2 and "--digest" in missing.stderr


def test_promote_refuses_when_staging_changes_before_its_smoke_test(settings, tmp_path, monkeypatch):
    import vci.release.promote as promotion

    v1, v2 = make_run(settings, tmp_path, 2), make_run(settings, tmp_path, 4)
    deploy(settings, v1.id, "staging")
    real = promotion.smoke_test

    def staging_changes_first(*args, **kwargs):  # a deploy lands after the digest check, before the gate
        deploy(settings, v2.id, "staging")
        return real(*args, **kwargs)

    monkeypatch.setattr(promotion, "smoke_test", staging_changes_first)
    with pytest.raises(ConflictError, match="changed meanwhile"):
        promote(settings, "staging", "production", digest=v1.version)
    assert status(settings, "production").state == "not-deployed"
    assert [r["outcome"] for r in history(settings, "production")["releases"]] == ["failed"]


def test_every_deploy_is_recorded_with_its_outcome(settings, tmp_path):
    good, broken = make_run(settings, tmp_path, 2), make_run(settings, tmp_path, 3, broken=True)
    first = deploy(settings, good.id, "staging")
    assert deploy(settings, good.id, "staging").status == "unchanged"
    with pytest.raises(DeployError):
        deploy(settings, broken.id, "staging", timeout=4)
    releases = history(settings, "staging")["releases"]
    assert [(r["action"], r["outcome"], r["run_id"]) for r in releases] == [
        ("deploy", "failed", broken.id),
        ("deploy", "unchanged", good.id),
        ("deploy", "succeeded", good.id),
    ]
    assert releases[-1]["release_id"] == first.release_id and "keeps serving" in releases[0]["reason"]
    assert status(settings, "staging").digest == good.version
