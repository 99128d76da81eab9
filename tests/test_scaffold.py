"""`vci init`: the scaffold a new user starts from works with `vci log` and `vci deploy` at once."""

import json
import os
import subprocess
import sys

import pytest

from tests.ci.test_github_actions import tool
from vci.errors import ConflictError, UsageError
from vci.scaffold import FILES, init_project, project_name


def vci(*args, cwd, check=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCI_")}
    env["VCI_CACHE_DIR"] = str(cwd / ".cache")
    out = subprocess.run([sys.executable, "-m", "vci", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_init_then_log_deploy_predict_and_test_work_at_once(tmp_path):
    where = tmp_path / "My Model"
    printed = json.loads(vci("init", str(where), "--output", "json", cwd=tmp_path).stdout)
    assert printed["project"] == "my-model" and sorted(printed["files"]) == sorted(FILES)
    assert "project: my-model" in (where / "vci.yaml").read_text()
    subprocess.run([sys.executable, "train.py"], cwd=where, check=True)
    logged = vci(
        "log",
        "--model",
        "model.py:Model",
        "--artifact",
        "weights=out/weights.json",
        "--requirements",
        "requirements.txt",
        "--examples",
        "examples.json",
        "--output",
        "json",
        cwd=where,
    )
    run_id = json.loads(logged.stdout)["run_id"]
    try:
        vci("deploy", run_id, cwd=where)
        answer = json.loads(vci("predict", "--data", "[1.5]", "--output", "json", cwd=where).stdout)
        assert answer["prediction"] == [round(1.97 * 1.5 + 1.06, 6)]
        assert json.loads(vci("test", "--output", "json", cwd=where).stdout)["passed"] is True
    finally:
        vci("undeploy", "--env", "staging", cwd=where, check=False)


def test_init_never_overwrites_and_a_dry_run_writes_nothing(tmp_path):
    (tmp_path / "model.py").write_text("# mine\n")
    with pytest.raises(ConflictError, match="already has model.py: nothing was written"):
        init_project(tmp_path)
    assert (tmp_path / "model.py").read_text() == "# mine\n" and not (tmp_path / "vci.yaml").exists()
    planned = init_project(tmp_path / "new", dry_run=True)
    assert planned.dry_run and "vci.yaml" in planned.files and not (tmp_path / "new").exists()
    forced = init_project(tmp_path, project="kept", force=True)
    assert "class Model" in (tmp_path / "model.py").read_text() and forced.project == "kept"
    out = vci("init", str(tmp_path), cwd=tmp_path, check=False)
    assert out.returncode == ConflictError.exit_code and "--force" in out.stderr and "Traceback" not in out.stderr
    with pytest.raises(UsageError, match="not valid"):
        init_project(tmp_path / "x", project="Bad Name")
    assert project_name(tmp_path / "__") == "model"


def test_the_scaffolds_workflow_passes_actionlint(tmp_path):
    init_project(tmp_path)
    out = subprocess.run(
        [tool("actionlint"), ".github/workflows/vci.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
