"""Shadow releases: the candidate answers a copy of live traffic beside production, judged by its answers.

The comparisons and the gate are pure; the release runs real local servers, with live requests sent to
production's own URL meanwhile (as its users would), and the stable server mirroring them."""

import json
import threading
import time

import pytest

import vci
from vci.config import load_settings
from vci.deploy import deploy, status, undeploy
from vci.envrules import ShadowPolicy
from vci.errors import ConfigError, NotFoundError
from vci.ledger import Ledger
from vci.release.promote import promote
from vci.release.shadow import shadow_gate
from vci.serve.shadow import agree


class Doubler:
    def __init__(self, artifacts):
        self.factor = int(open(artifacts["factor"]).read())

    def predict(self, data):
        return [x * self.factor for x in data]


class TenPercentOff(Doubler):
    """Agrees with Doubler except on every tenth number (x % 10 == 0)."""

    def predict(self, data):
        return [x * self.factor + (1 if x % 10 == 0 else 0) for x in data]


@pytest.mark.parametrize(
    ("live", "shadow", "compare", "agreed"),
    [
        ([1, 2], [1, 2], "exact", True),
        ([1, 2], [1, 3], "exact", False),
        ([0.5, 0.25], [0.5000001, 0.25], "tolerance:1e-6", True),
        ([0.5, 0.25], [0.51, 0.25], "tolerance:1e-6", False),
        ({"p": [0.1, 0.9]}, {"p": [0.1, 0.9]}, "tolerance:0", True),
        ([[0.1, 0.7, 0.2]], [[0.2, 0.5, 0.3]], "same_class", True),
        ([[0.1, 0.7, 0.2]], [[0.6, 0.3, 0.1]], "same_class", False),
        (["cat", "dog"], ["cat", "dog"], "same_class", True),
        ([[0.5, 0.3, 0.2]], [[0.1, 0.6, 0.3]], "top_k:2", True),
        ([[0.5, 0.3, 0.2]], [[0.1, 0.2, 0.7]], "top_k:2", False),
        ([1, 2], [1, 2, 3], "tolerance:1", False),
    ],
)
def test_the_comparisons(live, shadow, compare, agreed):
    assert agree(live, shadow, compare) is agreed


def test_the_gate_needs_data_and_few_disagreements():
    policy = ShadowPolicy(min_requests=100, max_disagreement=0.05)
    assert shadow_gate({"compared": 0}, policy)[0] is False  # no data never passes
    assert "only 99 of the 100" in shadow_gate({"compared": 99, "disagreed": 0}, policy)[1]
    assert shadow_gate({"compared": 100, "disagreed": 5}, policy) == (
        True,
        "5 of 100 answers disagreed (5.0%, within max_disagreement 5.0%, compare exact)",
    )
    assert shadow_gate({"compared": 100, "disagreed": 10}, policy)[0] is False


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"fraction": 0}, "fraction must be a share"),
        ({"max_disagreement": 2}, "max_disagreement must be a rate"),
        ({"compare": "roughly"}, "must be exact, tolerance:T, same_class or top_k:K"),
        ({"compare": "top_k:0"}, "top_k:K"),
        ({"min_requests": 0}, "min_requests must be a whole number"),
        ({"fractoin": 0.5}, "did you mean 'fraction'"),
    ],
)
def test_shadow_settings_are_checked_when_they_load(tmp_path, values, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({"environments": {"production": {"shadow": values}}}, cwd=tmp_path, environ={})


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    shadow = {"min_requests": 60, "duration": "60s", "max_disagreement": 0.02, "compare": "exact"}
    s = load_settings(
        {"store": str(tmp_path / "store"), "project": "demo"},
        cwd=tmp_path,
        environ={},
    )
    s.environments["production"].shadow = shadow
    yield s
    for env in ("staging", "production"):
        try:
            undeploy(s, env)
        except NotFoundError:
            pass


def log(settings, tmp_path, cls, factor: int, name: str):
    path = tmp_path / f"{name}.txt"
    path.write_text(str(factor))
    run = vci.init("demo", settings=settings)
    run.log_artifact("factor", path)
    run.log_model(cls, artifacts=["factor"])
    run.log_examples([[1, 2]], [[factor, 2 * factor]])  # the smoke test's: every candidate here passes it
    run.commit()
    return run


class LiveTraffic:
    """Users of production: one number per request, 0..99 in turn, to production's own URL, until stopped."""

    def __init__(self, settings):
        self.settings, self.errors, self.sent = settings, [], 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._send, daemon=True)

    def _send(self):
        model = vci.deploy.deployed_model(self.settings, "production")
        while not self.stop.is_set():
            try:
                model.predict([self.sent % 100])
            except Exception:  # noqa: BLE001
                # a local release listens on a new port: its users look it up again (`vci status`), and
                # the request must then succeed
                model = vci.deploy.deployed_model(self.settings, "production")
                try:
                    model.predict([self.sent % 100])
                except Exception as exc:  # noqa: BLE001 - counted: a live request must never fail
                    self.errors.append(exc)
            self.sent += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


def test_a_candidate_that_disagrees_on_ten_percent_is_refused_and_one_that_agrees_is_promoted(settings, tmp_path):
    live = log(settings, tmp_path, Doubler, 2, "live")
    deploy(settings, live.id, "staging")
    promote(settings, "staging", "production", strategy="direct")
    off = log(settings, tmp_path, TenPercentOff, 2, "off")
    deploy(settings, off.id, "staging")
    with LiveTraffic(settings) as traffic:
        refused = promote(settings, "staging", "production", strategy="shadow", timeout=60)
    assert refused["outcome"] == "rolled-back" and "above max_disagreement" in refused["reason"], refused
    assert status(settings, "production").digest == live.version  # production kept its digest
    assert refused["shadow"]["compared"] >= 60 and refused["shadow"]["disagreed"] > 0
    example = refused["shadow"]["disagreements"][0]  # kept to be inspected: the input and both answers
    assert example["input"][0] % 10 == 0 and example["shadow"] == [example["live"][0] + 1]
    assert traffic.errors == []

    same = log(settings, tmp_path, Doubler, 2, "same")  # another digest, the same answers
    deploy(settings, same.id, "staging")
    with LiveTraffic(settings) as traffic:
        promoted = promote(settings, "staging", "production", strategy="shadow", timeout=60)
    assert promoted["outcome"] == "succeeded" and "0 of" in promoted["reason"], promoted
    assert status(settings, "production").digest == same.version and traffic.errors == []
    record = Ledger.for_settings(settings).get("production", promoted["release_id"])
    assert record.strategy == "shadow" and record.extra["shadow"]["compared"] >= 60


def test_a_shadow_without_live_traffic_never_passes(settings, tmp_path):
    settings.environments["production"].shadow = {"min_requests": 5, "duration": "2s"}
    live = log(settings, tmp_path, Doubler, 2, "live")
    deploy(settings, live.id, "staging")
    promote(settings, "staging", "production", strategy="direct")
    deploy(settings, log(settings, tmp_path, Doubler, 2, "quiet").id, "staging")
    result = promote(settings, "staging", "production", strategy="shadow", timeout=60)
    assert result["outcome"] == "rolled-back" and "no verdict" in result["reason"]
    assert status(settings, "production").digest == live.version


class FailsOnTens(Doubler):
    """Raises on every tenth number: its 500s are disagreements, never live errors."""

    def predict(self, data):
        if any(x % 10 == 0 for x in data):
            raise RuntimeError("the candidate fails here")
        return super().predict(data)


def test_a_candidate_that_fails_some_requests_is_refused_and_live_traffic_never_sees_it(settings, tmp_path):
    live = log(settings, tmp_path, Doubler, 2, "live")
    deploy(settings, live.id, "staging")
    promote(settings, "staging", "production", strategy="direct")
    deploy(settings, log(settings, tmp_path, FailsOnTens, 2, "fails").id, "staging")
    with LiveTraffic(settings) as traffic:
        refused = promote(settings, "staging", "production", strategy="shadow", timeout=60)
    assert refused["outcome"] == "rolled-back" and refused["shadow"]["disagreed"] > 0
    assert {"status": 500} in [d["shadow"] for d in refused["shadow"]["disagreements"]]
    assert traffic.errors == [] and status(settings, "production").digest == live.version


def test_the_payload_log_keeps_each_comparison_marked_shadow_with_both_answers(settings, tmp_path):
    sink = tmp_path / "payloads.jsonl"
    settings.environments["production"].payload_log = {"sink": f"file:{sink}"}
    live = log(settings, tmp_path, Doubler, 2, "live")
    deploy(settings, live.id, "staging")
    promote(settings, "staging", "production", strategy="direct")
    deploy(settings, log(settings, tmp_path, TenPercentOff, 2, "off").id, "staging")
    with LiveTraffic(settings):
        refused = promote(settings, "staging", "production", strategy="shadow", timeout=60)
    assert refused["outcome"] == "rolled-back", refused
    deadline, compared = time.monotonic() + 15, []
    while time.monotonic() < deadline and len(compared) < 60:  # the writer flushes every few seconds
        lines = sink.read_text().splitlines() if sink.exists() else []
        compared = [r for r in map(json.loads, lines) if r.get("track") == "shadow"]
        time.sleep(0.2)
    assert len(compared) >= 60, f"{len(compared)} comparisons logged"
    for record in compared:
        (x,) = record["input"]
        assert record["output"] == [2 * x]  # production's answer
        assert record["shadow"]["output"] == [2 * x + (1 if x % 10 == 0 else 0)]  # the candidate's
        assert record["shadow"]["agreed"] is (x % 10 != 0) and record["shadow"]["release_id"] == refused["release_id"]
    assert any(not r["shadow"]["agreed"] for r in compared)
