"""Blue-green releases on real local servers: the candidate's stack is gated beside production, traffic
switches in one write, the previous stack is kept so that a rollback is one switch back; wrk (pinned to
the address it was started on, as a client that looked it up before the switch) and users that look the
address up at every request see no failed request through the switch and the switch back."""

import json
import os
import re
import signal
import subprocess
import time
import urllib.request

import pytest

from vci.config import load_settings
from vci.deploy import deploy, status
from vci.deploy.process import is_server_process, read_deployment
from vci.errors import ConfigError
from vci.ledger import Ledger
from vci.release.holds import Holds
from vci.release.promote import promote
from vci.release.rollback import rollback

from .conftest import Tunable, make_run
from .test_shadow import LiveTraffic

FAST_GATE = {"interval": "0.3s", "min_requests": 5, "step_timeout": "20s"}


class FailsWhereConfigured(Tunable):
    """Answers like Tunable unless its server's environment sets DEMO_FAIL (production's env does)."""

    def predict(self, data):
        if os.environ.get("DEMO_FAIL"):
            raise RuntimeError("DEMO_FAIL is set here")
        return super().predict(data)


class Wrk:
    """wrk POSTing /predict at one URL until stopped (SIGINT: it prints its counts); ``failed`` counts
    socket errors and non-2xx answers."""

    def __init__(self, url: str, tmp_path, token: str | None = None):
        script = tmp_path / "post.lua"
        script.write_text(
            'wrk.method = "POST"\nwrk.body = "[1, 2]"\nwrk.headers["Content-Type"] = "application/json"\n'
            + (f'wrk.headers["Authorization"] = "Bearer {token}"\n' if token else "")
        )
        self.command = ["wrk", "-t1", "-c4", "-d120s", "-s", str(script), f"{url}/predict"]

    def __enter__(self):
        self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(0.3)  # wrk is connected and sending before the release starts
        return self

    def __exit__(self, *exc):
        time.sleep(0.3)  # and goes on after it ended
        self.proc.send_signal(signal.SIGINT)
        self.output = self.proc.communicate(timeout=30)[0]
        done = re.search(r"(\d+) requests in", self.output)
        assert done, self.output
        self.requests = int(done.group(1))
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", self.output)
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", self.output)
        self.failed = sum(map(int, errors.groups())) if errors else 0
        self.failed += int(bad.group(1)) if bad else 0


class Users(LiveTraffic):
    """Users of production that look its address up (the deployment record `vci status` reads) at every
    request and never retry: each failure is counted."""

    def _send(self):
        while not self.stop.is_set():
            url = read_deployment(self.settings.state_dir, "production")["url"]
            request = urllib.request.Request(url + "/predict", b"[1, 2]", {"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    json.loads(answer.read())
            except Exception as exc:  # noqa: BLE001 - counted: a live request must never fail
                self.errors.append(exc)
            self.sent += 1


@pytest.fixture()
def production(settings):
    env = settings.environments["production"]
    env.canary, env.blue_green = dict(FAST_GATE), {"keep": "10m"}
    return env


def released(settings, tmp_path, factor=2):
    """Production runs a run of ``factor`` (promoted directly from staging)."""
    run = make_run(settings, tmp_path, factor)
    deploy(settings, run.id, "staging")
    promote(settings, "staging", "production", strategy="direct")
    return run


def test_switch_and_switch_back_under_wrk_fail_no_request(settings, production, tmp_path):
    blue = released(settings, tmp_path, 2)
    green = make_run(settings, tmp_path, 3)
    deploy(settings, green.id, "staging")
    blue_url = status(settings, "production").endpoint
    with Wrk(blue_url, tmp_path) as on_blue, Users(settings) as users:
        result = promote(settings, "staging", "production", strategy="blue-green", timeout=60)
    assert result["outcome"] == "succeeded", result
    assert on_blue.requests > 100 and on_blue.failed == 0, on_blue.output
    assert users.sent > 20 and users.errors == []
    live = status(settings, "production")
    assert live.digest == green.version and live.endpoint != blue_url
    assert live.kept["digest"] == blue.version and live.kept["endpoint"] == blue_url  # blue still serving
    record = Ledger.for_settings(settings).get("production", result["release_id"])
    gates = record.extra["blue_green"]
    assert record.strategy == "blue-green" and gates["smoke"] == {"passed": True, "checked": 3, "failures": []}
    assert gates["step"]["passed"] and gates["step"]["requests"] >= 5 and gates["kept"]["digest"] == blue.version

    green_url = live.endpoint
    with Wrk(green_url, tmp_path) as on_green, Users(settings) as users:
        back = rollback(settings, "production")
    assert back["outcome"] == "succeeded" and back["switched"] is True, back
    assert on_green.requests > 100 and on_green.failed == 0, on_green.output
    assert users.errors == []
    live = status(settings, "production")
    assert live.digest == blue.version and live.endpoint == blue_url  # the same server, not a new start
    assert live.kept["digest"] == green.version  # switched away from, kept in turn
    record = Ledger.for_settings(settings).get("production", back["release_id"])
    assert (record.action, record.strategy, record.extra["switched"]) == ("rollback", "blue-green", True)
    assert Holds.for_settings(settings).of("production", green.version)


def test_a_candidate_refused_at_its_smoke_test_a_rule_or_the_analysis_is_removed(settings, production, tmp_path):
    blue = released(settings, tmp_path, 2)
    before = read_deployment(settings.state_dir, "production")
    production.env = {"DEMO_FAIL": "1"}  # production's servers fail where staging's answer
    deploy(settings, _with_model(settings, tmp_path, FailsWhereConfigured).id, "staging")
    result = promote(settings, "staging", "production", strategy="blue-green", timeout=60)
    assert result["outcome"] == "rolled-back" and "the smoke test failed on 3 of 3" in result["reason"], result
    assert_untouched(settings, before, blue)

    production.env = {}
    deploy(settings, make_run(settings, tmp_path, 2, delay=0.08).id, "staging")  # right answers, slowly
    for key, value, refused in (
        ("canary", {**FAST_GATE, "max_avg_latency_ms": 40}, "average latency"),
        ("analysis", {"prometheus": "http://127.0.0.1:9", "query": "up", "max": 1}, "no data"),
    ):
        production.canary = dict(FAST_GATE)  # each case breaks one gate only
        setattr(production, key, value)
        result = promote(settings, "staging", "production", strategy="blue-green", timeout=60)
        assert result["outcome"] == "rolled-back" and refused in result["reason"], result
        assert result["blue_green"]["smoke"]["passed"] is True
        assert_untouched(settings, before, blue)


def board_page(settings) -> str:
    from vci.ui.app import create_app
    from vci.ui.guard import Guard

    return create_app(settings, Guard(token="t" * 32, actions=False)).test_client().get("/").get_data(as_text=True)


def test_after_the_window_the_kept_stack_goes_and_a_rollback_deploys_again(settings, production, tmp_path):
    production.blue_green = {"keep": "3s"}  # long enough to render the board within it
    blue = released(settings, tmp_path, 2)
    green = make_run(settings, tmp_path, 3)
    deploy(settings, green.id, "staging")
    assert promote(settings, "staging", "production", strategy="blue-green", timeout=60)["outcome"] == "succeeded"
    kept = read_deployment(settings.state_dir, "production-previous")
    assert status(settings, "production").kept["digest"] == blue.version
    assert f"blue-green: {blue.version[:19]} kept until" in board_page(settings)  # the web app shows it too
    time.sleep(3.2)
    assert status(settings, "production").kept is None  # the window has passed
    assert "blue-green:" not in board_page(settings)
    back = rollback(settings, "production")
    assert "switched" not in back and back["reason"].startswith("back to release")
    record = Ledger.for_settings(settings).get("production", back["release_id"])
    assert record.strategy == "direct" and status(settings, "production").digest == blue.version
    assert not is_server_process(kept["pid"]) and read_deployment(settings.state_dir, "production-previous") is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"keep": "soon"}, "blue_green.keep is not a duration"),
        ({"scale_down": "yes"}, "blue_green.scale_down must be true or false"),
        ({"kept": "10m"}, "did you mean 'keep'"),
    ],
)
def test_blue_green_settings_are_checked_when_they_load(tmp_path, values, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({"environments": {"production": {"blue_green": values}}}, cwd=tmp_path, environ={})


def assert_untouched(settings, before: dict, blue) -> None:
    """Production's record and server as they were, the candidate's server stopped and forgotten."""
    assert read_deployment(settings.state_dir, "production") == before
    assert status(settings, "production").digest == blue.version
    assert read_deployment(settings.state_dir, "production-green") is None
    assert read_deployment(settings.state_dir, "production-previous") is None
    logs = list((settings.state_dir / "logs").glob("production-green-*.log"))
    assert logs, "the candidate ran"
    assert not any(is_server_process(pid) for pid in _green_pids(settings))


def _green_pids(settings) -> list[int]:
    """Processes running a server for production-green (by their work directory)."""
    pids = []
    for proc in os.listdir("/proc"):
        if proc.isdigit():
            try:
                environ = open(f"/proc/{proc}/environ", "rb").read()
            except OSError:
                continue
            if b"production-green-" in environ and str(settings.state_dir).encode() in environ:
                pids.append(int(proc))
    return pids


def _with_model(settings, tmp_path, model):
    import vci

    path = tmp_path / "fails.json"
    path.write_text(json.dumps({"factor": 2}))
    run = vci.init("demo", settings=settings)
    run.log_artifact("config", path)
    run.log_model(model, artifacts=["config"])
    run.log_examples([[1, 2], [3], [0.5, 4, 5]], [[2, 4], [6], [1.0, 8, 10]])
    run.commit()
    return run
