"""`vci logs` and `vci status` over every environment: a local server's log, pods' logs, and the overview."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from tests.deploy.test_kube import log_run
from tests.deploy.test_kube import settings as kube_settings  # noqa: F401  (the fixture, by its name)
from tests.deploy.test_local import make_run
from tests.deploy.test_local import settings as local_settings  # noqa: F401
from vci.deploy import deploy, logs, overview, target_for, undeploy
from vci.errors import NotFoundError, RemoteError
from vci.ledger import Ledger
from vci.logview import render_line, select_lines


class Fussy:
    def __init__(self, artifacts):
        pass

    def predict(self, data):
        if data == "boom":
            raise ValueError("boom is not a number")
        return data


def vci_cli(settings, cwd, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "VCI_STORE": settings.store}
    out = subprocess.run([sys.executable, "-m", "vci", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out


def eventually(found, seconds: float = 10.0):
    """``found()`` once it is truthy (a log line is written just after its answer), else its last value."""
    deadline = time.monotonic() + seconds
    while not (result := found()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return result


def line(ts: float, event: str, **fields) -> str:
    return json.dumps({"ts": ts, "level": fields.pop("level", "info"), "event": event, **fields})


def test_a_json_line_becomes_columns_and_its_traceback_a_traceback():
    trace = 'Traceback (most recent call last):\n  File "model.py", line 7, in predict\nValueError: boom\n'
    text = render_line(line(0.25, "predict_failed", level="error", error="ValueError: boom", traceback=trace), "p-1")
    first, *rest = text.splitlines()
    assert first.startswith("[p-1] ") and " ERROR predict_failed error=" in first and "traceback" not in first
    assert rest == [
        "    Traceback (most recent call last):",
        '      File "model.py", line 7, in predict',
        "    ValueError: boom",
    ]
    assert render_line("plain text from a print\n") == "plain text from a print"


def test_lines_of_several_pods_come_in_time_order_within_the_window():
    lines = [("a", line(3, "x")), ("a", "a's print"), ("b", line(1, "y")), ("b", line(5, "z")), ("c", "no time")]
    assert select_lines(lines, None, None) == [lines[4], lines[2], lines[0], lines[1], lines[3]]
    assert select_lines(lines, 2.5, None) == [lines[4], lines[0], lines[1], lines[3]]  # the print: its line's time
    assert select_lines(lines, None, 2) == [lines[1], lines[3]] and select_lines(lines, None, 0) == []


def test_local_logs_show_the_servers_lines_and_follow_until_it_stops(local_settings, tmp_path):  # noqa: F811
    settings = local_settings
    with pytest.raises(NotFoundError):
        list(logs(settings, "staging"))
    run = make_run(settings, tmp_path, 3, cls=Fussy)
    deploy(settings, run.id, "staging")
    client = run.get_deployed_model("staging")
    with pytest.raises(RemoteError):
        client.predict("boom")
    failed = eventually(lambda: [e.text for e in logs(settings, "staging") if '"status":500' in e.text])
    assert json.loads(failed[0])["route"] == "/predict"  # the access line, written just after the answer
    assert len(list(logs(settings, "staging", tail=2))) == 2
    assert list(logs(settings, "staging", since=time.time() + 60)) == []

    followed: list[str] = []
    reader = threading.Thread(target=lambda: followed.extend(e.text for e in logs(settings, "staging", follow=True)))
    reader.start()
    time.sleep(0.5)
    client.predict([1])  # a line written while following
    assert eventually(lambda: [text for text in followed if '"route":"/predict","status":200' in text])
    undeploy(settings, "staging")
    reader.join(10)
    assert not reader.is_alive()  # the server stopped: following ended by itself

    deploy(settings, run.id, "staging")
    out = vci_cli(settings, tmp_path, "logs", "--env", "staging")
    assert " INFO listening " in out.stdout and not out.stdout.lstrip().startswith("{")


def test_status_without_env_lists_every_environment_since_its_release(local_settings, tmp_path):  # noqa: F811
    settings = local_settings
    run = make_run(settings, tmp_path, 2)
    result = deploy(settings, run.id, "staging")
    rows = {row.environment: row.to_json() for row in overview(settings)}
    assert rows["production"]["state"] == "not-deployed" and rows["production"]["target"] == "local"
    staged = rows["staging"]
    assert staged["state"] == "ready" and staged["run_id"] == run.id and staged["release_id"] == result.release_id
    assert staged["since"] == Ledger.for_settings(settings).get("staging", result.release_id).when
    out = vci_cli(settings, tmp_path, "status", "--output", "json")
    printed = {row["environment"]: row for row in json.loads(out.stdout)["environments"]}
    assert printed["staging"]["digest"] == run.version and printed["production"]["state"] == "not-deployed"


def test_pods_logs_are_prefixed_by_pod_and_followed_until_the_pods_go(kube_settings, tmp_path):  # noqa: F811
    settings = kube_settings
    deploy(settings, log_run(settings, tmp_path).id, "staging", timeout=60)  # two replicas
    shown = list(logs(settings, "staging"))
    pods = {entry.source for entry in shown}
    assert len(pods) == 2 and all(p.startswith("scaler-staging-") for p in pods)
    assert all("started" in entry.text for entry in shown)
    followed: list = []
    reader = threading.Thread(target=lambda: followed.extend(logs(settings, "staging", follow=True)))
    reader.start()
    time.sleep(1.0)
    assert {entry.source for entry in followed} == pods  # each stream starts with what the pod has
    undeploy(settings, "staging")
    reader.join(30)
    assert not reader.is_alive()  # every pod went away: every stream ended


def test_the_api_server_refuses_log_options_out_of_range(kube_settings, tmp_path):  # noqa: F811
    from kubernetes.client.exceptions import ApiException

    settings = kube_settings
    deploy(settings, log_run(settings, tmp_path).id, "staging", timeout=60)
    target = target_for(settings, "staging")
    pod = sorted({entry.source for entry in logs(settings, "staging")})[0]
    with pytest.raises(ApiException) as refused:
        target.cluster.core.read_namespaced_pod_log(pod, "ml-staging", since_seconds=0)
    assert refused.value.status == 422 and "sinceSeconds" in refused.value.body
    assert list(logs(settings, "staging", since=time.time() - 3600))  # vci asks for a window of >= 1 s
