"""Fixtures for CI tests: a project directory with a tiny model, and ``vci`` run as a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

MODEL = '''
class Doubler:
    """Multiplies every number by the factor in its artifact."""

    def __init__(self, artifacts):
        self.factor = int(open(artifacts["factor"]).read())

    def predict(self, data):
        return [x * self.factor for x in data]
'''

VCI_YAML = """project: demo
environments:
  staging: {target: local}
  production: {target: local, requires_approval: true}
"""


def clean_env(**extra) -> dict:
    """The test process's environment without CI variables (the tests set the ones they mean)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "RUNNER_", "JENKINS_", "VCI_")) and k not in ("BUILD_URL", "CI")
    }
    env.update(extra)
    return env


def make_project(path: Path, factor: int = 2) -> Path:
    """A workspace as CI checks it out: model.py, its artifact, smoke examples and vci.yaml."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.py").write_text(MODEL)
    (path / "factor.txt").write_text(str(factor))
    (path / "examples.json").write_text(
        json.dumps({"inputs": [[1, 2], [3]], "expected_outputs": [[factor, 2 * factor], [3 * factor]]})
    )
    (path / "vci.yaml").write_text(VCI_YAML)
    return path


def run_vci(*args, cwd, env, check=True):
    out = subprocess.run(
        [sys.executable, "-m", "vci", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    if check and out.returncode != 0:
        raise AssertionError(f"vci {' '.join(args)} exited {out.returncode}: {out.stderr}")
    return out


def stop_environments(cwd, env):
    for name in ("production", "staging"):
        run_vci("undeploy", "--env", name, cwd=cwd, env=env, check=False)


@pytest.fixture()
def project(tmp_path):
    """A project directory and the environment to run vci in it (its own cache, no CI variables)."""
    workdir = make_project(tmp_path / "work")
    env = clean_env(VCI_CACHE_DIR=str(tmp_path / "cache"), VCI_USER="tester")
    yield workdir, env
    stop_environments(workdir, env)
