"""Failing fast, with the reason, on a local target (real server processes, driven through the CLI as a user
would): a model that cannot start stops the deploy at once and says why, in the user's file and line; a
predict against a server that is gone, or a URL where nothing listens, gives up by its deadline saying what
vci knows; undeploying nothing succeeds; a run that does not exist leaves the ledger untouched."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from vci.deploy.process import free_port, is_server_process

GOOD = """\
class Model:
    def __init__(self, artifacts):
        self.k = 2

    def predict(self, data):
        return [x * self.k for x in data]
"""
SELF_TEST_FAILS = (
    GOOD
    + """
    def model_test(self):
        got = self.predict([1])
        assert got == [3], f"expected [3], got {got}"
"""
)
INIT_FAILS = GOOD.replace("self.k = 2", 'raise ValueError("weights missing a layer")')


@pytest.fixture()
def project(tmp_path):
    env = {**os.environ, "VCI_CACHE_DIR": str(tmp_path / "cache"), "VCI_STORE": str(tmp_path / "store")}
    env.pop("VCI_DEBUG", None)
    yield tmp_path, env
    vci(tmp_path, env, "undeploy", "--env", "staging")


def vci(cwd, env, *args, timeout: float = 120):
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "vci", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    out.seconds = time.monotonic() - started
    return out


def log_model(project, source: str, folder: str) -> str:
    """Write ``source`` as FOLDER/model.py, log it with ``vci log``; its run id."""
    cwd, env = project
    (cwd / folder).mkdir()
    (cwd / folder / "model.py").write_text(source)
    out = vci(cwd, env, "log", "--model", f"{folder}/model.py:Model", "-o", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["run_id"]


def deployed(project) -> dict:
    cwd, env = project
    return json.loads(vci(cwd, env, "status", "--env", "staging", "-o", "json").stdout)


def line_of(source: str, text: str) -> int:
    return next(n for n, line in enumerate(source.splitlines(), 1) if text in line)


@pytest.mark.parametrize(
    ("source", "what", "frame"),
    [
        (
            SELF_TEST_FAILS,
            "the model's self-test (model_test) failed: AssertionError: expected [3], got [2]",
            f'File "model.py", line {line_of(SELF_TEST_FAILS, "assert got")}, in model_test',
        ),
        (
            INIT_FAILS,
            "the model failed to load: ValueError: weights missing a layer",
            f'File "model.py", line {line_of(INIT_FAILS, "raise ValueError")}, in __init__',
        ),
    ],
    ids=["self-test", "init"],
)
def test_a_model_that_cannot_start_fails_the_deploy_at_once_in_its_own_file_and_line(project, source, what, frame):
    cwd, env = project
    good = log_model(project, GOOD, "good")
    assert vci(cwd, env, "deploy", good, "--env", "staging").returncode == 0
    before = deployed(project)
    bad = log_model(project, source, "bad")

    out = vci(cwd, env, "deploy", bad, "--env", "staging", "--timeout", "60")
    assert out.returncode == 13, out.stderr  # DeployError
    assert out.seconds < 15, f"took {out.seconds:.1f}s: the deploy waited instead of reading the server's state"
    lines = [line.strip() for line in out.stderr.splitlines()]
    assert lines[0].endswith("the previous deployment keeps serving")
    assert what in lines and frame in lines
    assert "<dynamic-code>" not in out.stderr and " | " not in out.stderr and '{"ts"' not in out.stderr
    assert any(line.startswith("full log: ") for line in lines)

    after = deployed(project)  # the run never became deployed; the previous server kept serving
    assert (after["run_id"], after["state"], after["digest"]) == (good, "ready", before["digest"])
    answer = vci(cwd, env, "predict", "--env", "staging", "--data", "[5]", "-o", "json")
    assert json.loads(answer.stdout)["prediction"] == [10]


def test_predict_against_a_server_that_is_gone_fails_at_once_and_says_so(project):
    cwd, env = project
    good = log_model(project, GOOD, "good")
    assert vci(cwd, env, "deploy", good, "--env", "staging").returncode == 0
    state = json.loads((cwd / "store" / "state" / "deployments" / "staging.json").read_text())
    os.kill(state["pid"], signal.SIGKILL)
    while is_server_process(state["pid"]):
        time.sleep(0.05)

    out = vci(cwd, env, "predict", "--env", "staging", "--data", "[1]")
    assert out.returncode == 15, out.stderr  # RemoteError
    assert out.seconds < 5, f"took {out.seconds:.1f}s retrying a server whose process is gone"
    assert "the staging server is not running" in out.stderr and "`vci status --env staging`" in out.stderr
    assert "`vci logs --env staging`" in out.stderr
    logs = vci(cwd, env, "logs", "--env", "staging")  # which still shows what the server said
    assert logs.returncode == 0 and "model_loaded" in logs.stdout, logs.stderr


def test_predict_to_a_url_where_nothing_listens_gives_up_by_its_short_deadline(project):
    cwd, env = project
    url = f"http://127.0.0.1:{free_port()}"
    out = vci(cwd, env, "predict", "--url", url, "--data", "[1]")
    assert out.returncode == 15 and "Connection refused" in out.stderr, out.stderr
    assert out.seconds < 15, f"took {out.seconds:.1f}s (the default deadline is 10 s)"
    out = vci(cwd, env, "predict", "--url", url, "--data", "[1]", "--deadline", "1")
    assert out.returncode == 15 and out.seconds < 4, (out.seconds, out.stderr)


def test_undeploy_where_nothing_runs_succeeds(project):
    cwd, env = project
    out = vci(cwd, env, "undeploy", "--env", "staging")
    assert (out.returncode, out.stdout.strip()) == (0, "staging: nothing to stop"), out.stderr
    out = vci(cwd, env, "undeploy", "--env", "staging", "-o", "json")
    assert out.returncode == 0 and json.loads(out.stdout) == {"environment": "staging", "status": "not-deployed"}


def test_a_deploy_of_a_run_that_does_not_exist_writes_nothing_to_the_ledger(project):
    cwd, env = project
    good = log_model(project, GOOD, "good")  # the store exists and has a run, just not this one
    out = vci(cwd, env, "deploy", "20260101-000000-dead", "--env", "staging")
    assert out.returncode == 6 and "run 20260101-000000-dead is not in the store" in out.stderr, out.stderr
    history = vci(cwd, env, "history", "--env", "staging", "-o", "json")
    assert history.returncode == 0 and json.loads(history.stdout)["releases"] == [], history.stdout
    assert vci(cwd, env, "deploy", good, "--env", "staging").returncode == 0  # a real deploy is recorded
    assert len(json.loads(vci(cwd, env, "history", "--env", "staging", "-o", "json").stdout)["releases"]) == 1
