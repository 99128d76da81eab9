"""Local deployments: a real model server process per environment, swapped only once the new one is ready."""

import json
import os
import subprocess
import sys

import pytest

import vci
from vci.config import load_settings
from vci.deploy import deploy, status, undeploy
from vci.deploy.process import is_server_process
from vci.errors import DeployError, NotFoundError, UsageError


class Doubler:
    def __init__(self, artifacts):
        self.factor = int(open(artifacts["factor"]).read())

    def predict(self, data):
        return [x * self.factor for x in data]


class Broken(Doubler):
    def model_test(self):
        raise RuntimeError("self-test failed on purpose")


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    s = load_settings({"store": str(tmp_path / "store"), "project": "demo"}, cwd=tmp_path, environ={})
    yield s
    for env in ("staging", "production"):
        try:
            undeploy(s, env)
        except NotFoundError:
            pass


def make_run(settings, tmp_path, factor, cls=Doubler):
    path = tmp_path / f"factor-{factor}.txt"
    path.write_text(str(factor))
    run = vci.init("demo", settings=settings)
    run.log_artifact("factor", path)
    run.log_model(cls, artifacts=["factor"])
    run.commit()
    return run


def test_user_flow_deploy_predict_replace_undeploy(settings, tmp_path):
    run = make_run(settings, tmp_path, 2)
    first = run.deploy(wait=True)
    assert first.status == "deployed" and first.digest == run.version
    assert run.get_deployed_model().predict([1, 2]) == [2, 4]
    assert deploy(settings, run.id).status == "unchanged"  # idempotent: no restart
    old_pid = status(settings).pid

    second = make_run(settings, tmp_path, 3)
    result = deploy(settings, second.id, "staging")
    assert result.previous == run.version and result.release_id != first.release_id
    assert second.get_deployed_model().predict([1]) == [3]
    assert not is_server_process(old_pid)  # the old server was stopped after the switch
    assert status(settings).state == "ready"

    undeploy(settings, "staging")
    assert status(settings).state == "not-deployed"
    with pytest.raises(NotFoundError, match="nothing is deployed"):
        run.get_deployed_model()


def test_failed_deploy_leaves_the_previous_one_serving(settings, tmp_path):
    good = make_run(settings, tmp_path, 5)
    deploy(settings, good.id)
    before = status(settings)
    broken = make_run(settings, tmp_path, 7, Broken)
    with pytest.raises(DeployError, match="previous deployment keeps serving"):
        deploy(settings, broken.id, timeout=8)
    after = status(settings)
    assert after.pid == before.pid and after.digest == good.version and after.state == "ready"
    assert good.get_deployed_model().predict([1]) == [5]


def test_dry_run_touches_nothing_and_images_are_refused(settings, tmp_path):
    run = make_run(settings, tmp_path, 2)
    plan = deploy(settings, run.id, dry_run=True)
    assert plan.status == "would-deploy" and plan.previous is None
    assert status(settings).state == "not-deployed"
    with pytest.raises(UsageError, match="image reference"):
        deploy(settings, "registry.example.com/ml/iris@sha256:" + "a" * 64)


def test_cli_deploy_status_predict_undeploy(settings, tmp_path):
    run = make_run(settings, tmp_path, 4)
    env = {**os.environ, "VCI_STORE": settings.store}

    def cli(*args):
        out = subprocess.run(
            [sys.executable, "-m", "vci", *args, "-o", "json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    deployed = cli("deploy", run.id, "--env", "staging")
    assert set(deployed) >= {"environment", "digest", "release_id", "endpoint"}
    assert cli("status", "--env", "staging")["state"] == "ready"
    assert cli("predict", "--env", "staging", "--data", "[10]")["prediction"] == [40]
    assert cli("undeploy", "--env", "staging")["status"] == "removed"


def test_work_dirs_go_with_their_process(settings, tmp_path):
    from vci.deploy.process import read_deployment

    state, work = settings.state_dir, settings.state_dir / "work"
    first = make_run(settings, tmp_path, 2)
    deploy(settings, first.id)
    first_work = read_deployment(state, "staging")["work_dir"]
    assert os.path.isdir(first_work)
    with pytest.raises(DeployError):
        deploy(settings, make_run(settings, tmp_path, 7, Broken).id, timeout=8)
    assert sorted(os.listdir(work)) == [os.path.basename(first_work)]  # the failed one's went with it
    second = make_run(settings, tmp_path, 3)
    deploy(settings, second.id)
    second_work = read_deployment(state, "staging")["work_dir"]
    assert sorted(os.listdir(work)) == [os.path.basename(second_work)]  # replaced: the old one's is gone
    undeploy(settings, "staging")
    assert os.listdir(work) == []


@pytest.mark.parametrize("how", ["absolute", "dotdot"])
def test_a_state_record_naming_another_directory_removes_nothing(settings, tmp_path, how):
    from vci.deploy.process import remove_deployment

    precious, work = tmp_path / "precious", settings.state_dir / "work"
    precious.mkdir()
    (precious / "data").write_text("keep")
    work.mkdir(parents=True)
    named = precious if how == "absolute" else work / os.path.relpath(precious, work)
    assert os.path.samefile(named, precious)
    (settings.state_dir / "deployments").mkdir(parents=True)
    (settings.state_dir / "deployments" / "staging.json").write_text(json.dumps({"pid": None, "work_dir": str(named)}))
    remove_deployment(settings.state_dir, "staging")
    assert (precious / "data").read_text() == "keep"


def test_a_garbled_deployment_record_is_a_clear_error(settings, tmp_path):
    from vci.deploy.process import _dirs

    record = _dirs(settings.state_dir)["deployments"] / "staging.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text('{"pid": 12')  # a truncated write by hand
    with pytest.raises(DeployError, match="staging.json is not valid JSON"):
        status(settings, "staging")
    out = subprocess.run(
        [sys.executable, "-m", "vci", "status", "--env", "staging"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "VCI_STORE": str(tmp_path / "store"), "VCI_STATE_DIR": str(settings.state_dir)},
        timeout=60,
    )
    assert out.returncode == DeployError.exit_code and "Traceback" not in out.stderr, out.stderr
    record.unlink()
