"""A canary promoted through the app shows on the board with its weight, and the app's abort removes it
while the promotion runs: the stable release keeps serving and the ledger records the attempt as aborted
by whoever aborted it. Actions of two people at once each record their own actor."""

import re
import threading
import time

import pytest

from tests.release.conftest import make_run, release_settings, stop_all
from tests.ui.conftest import app_client, signed_in
from vci.deploy import deploy, status
from vci.deploy.local import LocalTarget
from vci.release.promote import promote
from vci.release.rollback import history

CANARY = {"steps": [50, 100], "interval": 120, "min_requests": 3, "step_timeout": 300}
ORIGIN = "http://localhost"


@pytest.fixture()
def canary_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VCI_USER", "ci-bot")
    monkeypatch.chdir(tmp_path)
    settings = release_settings(tmp_path, {"production": {"canary": CANARY}})
    yield settings
    stop_all(settings)


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_abort_removes_the_canary_of_a_running_promotion(canary_settings, tmp_path):
    settings = canary_settings
    first = deploy(settings, make_run(settings, tmp_path, 2).id, "staging")
    promote(settings, "staging", "production")
    stable = status(settings, "production")
    new = make_run(settings, tmp_path, 3)
    deploy(settings, new.id, "staging")
    releasing, aborting = app_client(settings), app_client(settings)
    form = {"csrf": signed_in(releasing), "source": "staging", "destination": "production", "digest": new.version,
            "strategy": "canary", "actor": "alice", "seen": stable.release_id}  # fmt: skip
    answers = []
    worker = threading.Thread(target=lambda: answers.append(releasing.post("/promote", data=form,
                                                                           headers={"Origin": ORIGIN})))  # fmt: skip
    worker.start()
    target = LocalTarget(settings, settings.environment("production"))
    wait_for(lambda: (target.canary_status() or {}).get("weight") == 50, 60, "the canary at 50 %")
    csrf = signed_in(aborting)
    board = aborting.get("/").get_data(as_text=True)
    assert "at 50 %" in board and new.version[:19] in board
    figures = re.compile(r"[1-9]\d* requests, errors 0.0 %, p90 \d+ ms")
    wait_for(lambda: figures.search(aborting.get("/").get_data(as_text=True)), 30, "the canary's figures on the board")
    back = {"csrf": csrf, "env": "staging", "to": first.release_id, "actor": "bob",
            "seen": status(settings, "staging").release_id}  # fmt: skip
    rolled = aborting.post("/rollback", data=back, headers={"Origin": ORIGIN})  # while alice's promotion runs
    assert rolled.status_code == 200 and status(settings, "staging").digest == first.digest
    assert history(settings, "staging", 1)["releases"][0]["who"] == "bob"
    done = aborting.post(
        "/abort", data={"csrf": csrf, "env": "production", "actor": "carol"}, headers={"Origin": ORIGIN}
    )
    assert done.status_code == 200 and "keeps its stable release" in done.get_data(as_text=True)
    worker.join(30)
    assert not worker.is_alive() and answers[0].status_code == 404  # the driver found its canary gone
    assert target.canary_status() is None
    assert status(settings, "production").digest == stable.digest
    newest = history(settings, "production", 1)["releases"][0]
    assert (newest["outcome"], newest["who"], newest["digest"]) == ("aborted", "alice", new.version)
    assert newest["aborted_by"] == "carol" and "carol" in done.get_data(as_text=True)
    again = aborting.post(
        "/abort", data={"csrf": csrf, "env": "production", "actor": "carol"}, headers={"Origin": ORIGIN}
    )
    assert again.status_code == 404 and "no canary" in again.get_data(as_text=True)
