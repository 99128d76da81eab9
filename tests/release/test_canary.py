"""Canary releases: metrics parsing and rules (pure), the step driver on a scripted target, and local
canaries against real model servers that pass the gate but break an error-rate or latency rule."""

import math

import pytest

from vci.deploy import deploy, status
from vci.deploy.local import LocalTarget
from vci.errors import ConfigError, DeployError
from vci.release.canary import (
    CanaryPolicy,
    Snapshot,
    Tally,
    judge,
    parse_metrics,
    quantile,
    run_steps,
)
from vci.release.promote import promote
from vci.release.rollback import history
from vci.serve.metrics import Metrics

from .conftest import make_run, release_settings, stop_all

ROUTES = ("/predict", "/batch-predict", "/healthz", "/metrics")


def exposition(requests):
    """A real server Metrics object's text after ``requests`` [(route, status, seconds), ...]."""
    metrics = Metrics(ROUTES)
    for route, code, seconds in requests:
        metrics.started()
        metrics.finished(route, code, seconds)
    return metrics.render().decode()


def test_parse_metrics_counts_model_routes_only():
    text = exposition(
        [("/predict", 200, 0.003)] * 8
        + [("/predict", 500, 0.2), ("/batch-predict", 404, 0.02)]
        + [("/healthz", 500, 9.0)] * 50
    )
    snap = parse_metrics(text)
    assert (snap.total, snap.errors) == (10, 2)
    assert snap.buckets[math.inf] == 10 and snap.buckets[0.005] == 8
    assert snap.seconds == pytest.approx(8 * 0.003 + 0.2 + 0.02, rel=1e-3)


def test_quantile_interpolates_like_histogram_quantile():
    assert quantile(0.9, {0.1: 0, 0.25: 10, math.inf: 10}) == pytest.approx(0.1 + 0.15 * 0.9)
    assert quantile(0.5, {0.01: 5, 0.1: 10, math.inf: 10}) == pytest.approx(0.01)
    assert quantile(0.9, {0.1: 0, math.inf: 0}) is None
    assert quantile(0.9, {10.0: 0, math.inf: 4}) == 10.0  # beyond the last bound: the last bound


def test_judge_rules_and_no_data():
    policy = CanaryPolicy(max_error_rate=0.05, max_p90_latency_ms=100, max_avg_latency_ms=50, min_requests=10)
    fast = parse_metrics(exposition([("/predict", 200, 0.004)] * 20))
    assert judge(fast, policy)[0]
    passed, why = judge(Snapshot(), policy)
    assert not passed and why.startswith("no data: 0 canary requests")
    errors = parse_metrics(exposition([("/predict", 200, 0.004)] * 18 + [("/predict", 503, 0.004)] * 2))
    assert judge(errors, policy) == (False, pytest.approx(judge(errors, policy)[1]))
    assert "error rate 10.00% > 5.00%" in judge(errors, policy)[1]
    slow = parse_metrics(exposition([("/predict", 200, 0.004)] * 15 + [("/predict", 200, 0.3)] * 5))
    assert "p90 latency" in judge(slow, policy)[1]
    steady = parse_metrics(exposition([("/predict", 200, 0.08)] * 20))
    assert "average latency 80 ms > 50 ms" in judge(steady, policy)[1]


def test_policy_from_settings_and_replicas():
    policy = CanaryPolicy.from_settings({"steps": [25, 100], "interval": "2m", "max_p90_latency_ms": 200})
    assert policy.steps == (25, 100) and policy.interval == 120.0 and policy.max_p90_latency_ms == 200
    with pytest.raises(ConfigError, match="rise within"):
        CanaryPolicy.from_settings({"steps": [50, 10]})
    with pytest.raises(ConfigError, match="unknown canary setting"):
        CanaryPolicy.from_settings({"stepz": [1]})
    with pytest.raises(ConfigError, match="canary.interval is not a duration: '1.2.3s'"):
        CanaryPolicy.from_settings({"interval": "1.2.3s"})  # one duration parser: the settings' own


class ScriptedCanary:
    """A canary that receives ``organic`` requests per scrape plus whatever the driver sends, and
    whose stable server ``stable`` requests per scrape."""

    def __init__(self, organic=0, latency=0.002, status=200, stable=0):
        self.requests, self.organic, self.latency, self.status = [], organic, latency, status
        self.weights, self.sent, self.stable, self.stable_requests = [], 0, stable, 0

    def set_weight(self, weight):
        if not self.weights or self.weights[-1] != weight:  # called again at every check
            self.weights.append(weight)

    def metrics(self):
        self.requests += [("/predict", self.status, self.latency)] * self.organic
        return {"canary-pod": exposition(self.requests)}

    def stable_metrics(self):
        self.stable_requests += self.stable
        return {"stable-pod": exposition([("/predict", 200, 0.002)] * self.stable_requests)}

    def send(self, inputs, weight):
        self.sent += len(inputs)
        self.requests += [("/predict", self.status, self.latency)] * len(inputs)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 0.05
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_run_steps_sends_examples_when_no_traffic_arrives():
    policy = CanaryPolicy(steps=(10, 50, 100), interval=1.0, min_requests=12)
    target, clock = ScriptedCanary(organic=0), FakeClock()
    verdict = run_steps(target, policy, [[1], [2], [3]], sleep=clock.sleep, clock=clock)
    assert verdict["passed"] and target.weights == [10, 50] and target.sent >= 24
    assert [s["weight"] for s in verdict["steps"]] == [10, 50]


def test_run_steps_waits_on_organic_traffic_and_stops_on_a_broken_rule():
    clock = FakeClock()
    busy = ScriptedCanary(organic=5)
    assert (
        run_steps(busy, CanaryPolicy(interval=1.0, min_requests=10), [[1]], sleep=clock.sleep, clock=clock)["passed"]
        and busy.sent == 0
    )
    failing = ScriptedCanary(status=500)
    verdict = run_steps(failing, CanaryPolicy(interval=0.5, min_requests=5), [[1]], sleep=clock.sleep, clock=clock)
    assert not verdict["passed"] and verdict["reason"].startswith("step 10%: error rate 100.00%")
    assert failing.weights == [10]  # stopped at the first step
    silent = ScriptedCanary()
    verdict = run_steps(
        silent, CanaryPolicy(interval=0.5, min_requests=5, step_timeout=2), [], sleep=clock.sleep, clock=clock
    )
    assert not verdict["passed"] and "no data" in verdict["reason"]


def test_counters_are_differenced_per_pod_with_prometheus_reset_rule():
    ok, err = ("/predict", 200, 0.002), ("/predict", 500, 0.002)
    tally = Tally({"a": exposition([ok] * 10), "b": exposition([ok] * 5)})
    seen = tally.update({"b": exposition([ok] * 8)})  # a's scrape failed: it keeps what it counted
    assert (seen.total, seen.errors) == (3, 0)
    seen = tally.update({"a": exposition([ok] * 2 + [err]), "b": exposition([ok] * 8)})  # a restarted
    assert (seen.total, seen.errors) == (6, 1) and seen.buckets[math.inf] == 6
    seen = tally.update({"a": exposition([ok] * 2 + [err] * 3), "b": exposition([ok] * 9), "c": exposition([ok])})
    assert (seen.total, seen.errors) == (9, 3)  # c is new: it counts from its first scrape
    assert seen.seconds == pytest.approx(9 * 0.002, rel=1e-3)


class RestartingCanary(ScriptedCanary):
    """Two canary pods answering 3 requests and failing 1 per scrape; pod "a", which served 200 requests
    in earlier steps, restarts at the third scrape (what it served since the second is lost, as with any
    scraper); pod "b" misses every other scrape."""

    def __init__(self):
        super().__init__(stable=12)
        self.pods, self.scrapes, self.served = {"a": [("/predict", 200, 0.002)] * 200, "b": []}, 0, 0

    def metrics(self):
        self.scrapes += 1
        for requests in self.pods.values():
            requests += [("/predict", 200, 0.002)] * 3 + [("/predict", 500, 0.002)]
            self.served += 4
        if self.scrapes == 3:
            self.pods["a"] = []  # the container restarted: its counters start again from 0
        return {n: exposition(r) for n, r in self.pods.items() if n != "b" or self.scrapes % 2}


def test_a_restarting_or_unreachable_pod_does_not_distort_the_step():
    target, clock = RestartingCanary(), FakeClock()
    policy = CanaryPolicy(steps=(50, 100), interval=2.0, min_requests=20, max_error_rate=0.3)
    verdict = run_steps(target, policy, [], sleep=clock.sleep, clock=clock)
    step = verdict["steps"][0]
    assert verdict["passed"] and "error rate 25.00%" in step["reason"], verdict["reason"]
    baseline, lost = 8, 4  # the first scrape's, and a's requests between the second scrape and its restart
    assert step["requests"]["canary"] in (target.served - baseline - lost, target.served - baseline - lost - 4)


def test_each_step_reports_the_share_the_canary_served():
    target, clock = ScriptedCanary(organic=2, stable=6), FakeClock()
    verdict = run_steps(
        target, CanaryPolicy(steps=(25, 100), interval=1.0, min_requests=10), [], sleep=clock.sleep, clock=clock
    )
    step = verdict["steps"][0]
    assert step["requests"]["stable"] == 3 * step["requests"]["canary"] > 0
    assert step["served"] == 0.25
    assert f"canary served {step['served']:.0%}" in step["reason"]


CANARY = {
    "steps": [20, 50, 100],
    "interval": 0.3,
    "max_error_rate": 0.05,
    "max_p90_latency_ms": 150,
    "min_requests": 8,
}


@pytest.fixture()
def canary_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VCI_USER", "tester")
    s = release_settings(tmp_path, {"production": {"strategy": "canary", "canary": dict(CANARY)}})
    yield s
    stop_all(s)


def start_production(settings, tmp_path, **broken):
    good = make_run(settings, tmp_path, 2)
    deploy(settings, good.id, "staging")
    first = promote(settings, "staging", "production")  # the environment's strategy is canary...
    assert first["outcome"] == "succeeded" and "canary skipped: nothing ran there yet" in first["reason"]
    new = make_run(settings, tmp_path, 3, **broken)
    deploy(settings, new.id, "staging")
    return good, new, status(settings, "production")


def test_local_canary_promotes_fully(canary_settings, tmp_path):
    good, new, before = start_production(canary_settings, tmp_path)
    result = promote(canary_settings, "staging", "production")
    assert result["outcome"] == "succeeded" and result["strategy"] == "canary"
    assert [s["weight"] for s in result["canary"]] == [20, 50] and all(s["passed"] for s in result["canary"])
    after = status(canary_settings, "production")
    assert after.digest == new.version and after.pid != before.pid
    assert LocalTarget(canary_settings, canary_settings.environment("production")).canary_status() is None


@pytest.mark.parametrize("broken, rule", [({"fail_after": 4}, "error rate"), ({"delay": 0.3}, "p90 latency")])
def test_local_canary_breaking_a_rule_rolls_back(canary_settings, tmp_path, broken, rule):
    good, new, before = start_production(canary_settings, tmp_path, **broken)
    result = promote(canary_settings, "staging", "production")
    assert result["outcome"] == "rolled-back" and rule in result["reason"]
    assert "keeps its previous release" in result["reason"]
    after = status(canary_settings, "production")
    assert after.digest == good.version and after.pid == before.pid  # stable never touched
    assert LocalTarget(canary_settings, canary_settings.environment("production")).canary_status() is None
    latest = history(canary_settings, "production")["releases"][0]
    assert latest["outcome"] == "rolled-back" and latest["digest"] == new.version and rule in latest["reason"]
    assert latest["canary"][0]["passed"] is False


def test_cli_exit_code_when_the_canary_rolls_back(canary_settings, tmp_path):
    import json
    import os
    import subprocess
    import sys

    _, new, _ = start_production(canary_settings, tmp_path, fail_after=4)
    (tmp_path / "vci.yaml").write_text(
        json.dumps(
            {
                "project": "demo",
                "store": canary_settings.store,
                "environments": {"production": {"canary": CANARY}},
            }
        )
    )
    out = subprocess.run(
        [sys.executable, "-m", "vci", "promote", "--digest", new.version, "--strategy", "canary", "-o", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "VCI_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert out.returncode == DeployError.exit_code, out.stderr
    assert json.loads(out.stdout)["outcome"] == "rolled-back"


@pytest.mark.parametrize("track", ["canary", "shadow"])
def test_a_local_canary_or_shadow_labels_its_metrics_with_its_track_and_release(canary_settings, tmp_path, track):
    good, new, before = start_production(canary_settings, tmp_path)
    target = LocalTarget(canary_settings, canary_settings.environment("production"))
    try:
        canary = target.start_canary(new.id, release_id="rel-77", track=track)
        (text,) = canary.metrics().values()
        (stable,) = canary.stable_metrics().values()
    finally:
        target.remove_canary()
    assert f'vci_model_ready{{release="rel-77",track="{track}"}} 1' in text
    assert 'track="stable"' in stable and f'track="{track}"' not in stable
