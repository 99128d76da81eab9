"""Production in waves on local deployments: a group (`targets: [eu, us]`, `waves: sequential`) promoted one
target after another under one release id; a failure in a later wave rolls back the earlier ones."""

import pytest

from vci.deploy import deploy, overview, status, undeploy
from vci.deploy.local import LocalTarget
from vci.errors import ConfigError, DeployError, UsageError
from vci.ledger import Ledger
from vci.release.auto import promote_auto
from vci.release.holds import Holds
from vci.release.rollback import history
from vci.release.waves import promote_waves, release

from .conftest import make_run, release_settings

SLOW_CANARY = {"steps": [50, 100], "interval": 0.2, "min_requests": 3, "max_avg_latency_ms": 40, "step_timeout": 20}


@pytest.fixture()
def waves(settings, tmp_path):
    made = []

    def make(us=None, **group):
        environments = {
            "eu": {},
            "us": us or {},
            "production": {"targets": ["eu", "us"], "waves": "sequential", **group},
        }
        made.append(release_settings(tmp_path, environments))
        return made[-1]

    yield make
    for each in made:
        for name in ("staging", "eu", "us"):
            LocalTarget(each, each.environment(name)).remove_canary()
            undeploy(each, name)


def runs_on(settings, *waves):
    return [status(settings, wave).digest for wave in waves]


def test_every_wave_in_turn_under_one_release(waves, tmp_path):
    settings = waves()
    v1 = make_run(settings, tmp_path, 2)
    deploy(settings, v1.id, "staging")
    done = release(settings, "staging", "production", digest=v1.version)
    assert done["outcome"] == "succeeded" and done["strategy"] == "waves"
    assert [w["environment"] for w in done["waves"]] == ["eu", "us"] and runs_on(settings, "eu", "us") == [
        v1.version
    ] * 2
    ledger = Ledger.for_settings(settings)
    group = ledger.get("production", done["release_id"])
    assert group.outcome == "succeeded" and [w["outcome"] for w in group.extra["waves"]] == ["succeeded"] * 2
    for index, wave in enumerate(("eu", "us"), 1):
        record = ledger.get(wave, done["release_id"])  # one release: each wave's record has the group's id
        assert record.outcome == "succeeded" and record.extra["wave"] == {
            "group": "production",
            "index": index,
            "of": 2,
        }
    with pytest.raises(UsageError, match="'production' is a group of environments, promoted in waves to eu, us"):
        status(settings, "production")
    rows = {row.environment: row for row in overview(settings)}  # `vci status` of every environment
    assert rows["production"].target == "group" and "promoted in waves to eu, us" in (rows["production"].error or "")
    assert rows["eu"].status.digest == v1.version


def test_a_canary_failing_in_the_second_wave_rolls_the_first_back(waves, tmp_path):
    settings = waves(us={"strategy": "canary", "canary": SLOW_CANARY})
    v1, slow = make_run(settings, tmp_path, 2), make_run(settings, tmp_path, 2, delay=0.15)
    deploy(settings, v1.id, "staging")
    first = promote_waves(settings, "staging", "production")
    deploy(settings, slow.id, "staging")
    result = promote_waves(settings, "staging", "production", digest=slow.version)
    assert result["outcome"] == "rolled-back" and "wave 2 of 2 ('us') rolled back its canary" in result["reason"]
    assert f"'eu' back to {first['release_id']}" in result["reason"], result["reason"]
    assert runs_on(settings, "eu", "us") == [v1.version] * 2  # every target on one digest: the old one
    assert [w["outcome"] for w in result["waves"]] == ["rolled-back", "rolled-back"]
    eu = [(r["action"], r["outcome"], r["digest"]) for r in history(settings, "eu")["releases"]]
    assert eu == [
        ("rollback", "succeeded", v1.version),
        ("promote", "succeeded", slow.version),
        ("promote", "succeeded", v1.version),
    ]
    [latest, *_] = history(settings, "us")["releases"]
    assert latest["release_id"] == result["release_id"] and latest["outcome"] == "rolled-back"
    assert history(settings, "production")["releases"][0]["outcome"] == "rolled-back"


def test_a_failing_second_wave_undeploys_a_first_wave_that_ran_nothing(waves, tmp_path):
    settings = waves(us={"analysis": {"prometheus": "http://127.0.0.1:9", "query": "up", "min": 1}})
    run = make_run(settings, tmp_path, 2)
    deploy(settings, run.id, "staging")
    with pytest.raises(DeployError, match=r"wave 2 of 2 \('us'\) failed: the analysis gate failed") as failed:
        promote_waves(settings, "staging", "production", digest=run.version)
    assert "'eu' undeployed (it ran nothing before)" in str(failed.value)
    assert [status(settings, wave).state for wave in ("eu", "us")] == ["not-deployed", "not-deployed"]
    [group] = history(settings, "production")["releases"]
    assert group["outcome"] == "failed" and group["waves"][1]["outcome"] == "failed"


def test_a_digest_held_in_one_wave_is_held_for_the_group(waves, tmp_path):
    settings = waves(auto_promote=True)
    run = make_run(settings, tmp_path, 2)
    deploy(settings, run.id, "staging")
    Holds.for_settings(settings).add("us", run.version, "bad in us")
    held = promote_auto(settings, "staging", "production")
    assert held["outcome"] == "held" and "'us'" in held["reason"] and status(settings, "eu").state == "not-deployed"
    Holds.for_settings(settings).lift("us", run.version)
    assert promote_auto(settings, "staging", "production")["outcome"] == "succeeded"
    assert runs_on(settings, "eu", "us") == [run.version] * 2
    assert promote_auto(settings, "staging", "production")["outcome"] == "unchanged"


@pytest.mark.parametrize(
    "environments, fragment",
    [
        ({"production": {"targets": ["eu", "moon"]}, "eu": {}}, "targets names 'moon', which is no other environment"),
        ({"production": {"targets": ["production"]}}, "targets names 'production', which is no other"),
        ({"production": {"targets": ["eu"], "replicas": 2}, "eu": {}}, "is a Kubernetes setting"),
        ({"production": {"targets": ["eu"], "canary": {}}, "eu": {}}, "is a group (targets: it runs nothing itself)"),
        ({"production": {"waves": "sequential"}}, "waves says how to promote to targets, and it has none"),
        ({"production": {"targets": ["eu"]}, "eu": {"targets": ["staging"]}}, "'eu' is a group itself"),
        ({"production": {"targets": ["eu", "eu"]}, "eu": {}}, "each once"),
        ({"production": {"targets": ["eu"], "waves": "parallel"}, "eu": {}}, "waves must be one of sequential"),
        (
            {"production": {"targets": ["eu", "k"]}, "eu": {}, "k": {"target": "kubernetes"}},
            "mixes local and cluster environments",
        ),
    ],
)
def test_group_settings_are_checked(tmp_path, environments, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        release_settings(tmp_path, environments)
