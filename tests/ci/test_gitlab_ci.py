"""The GitLab CI template and example pipeline: gitlab-ci-local expands the include and runs the pipeline for real."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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

GITLAB_CI = ROOT / "gitlab_ci"
TEMPLATE = GITLAB_CI / "vci.gitlab-ci.yml"
EXAMPLE = GITLAB_CI / "example" / ".gitlab-ci.yml"
HIDDEN_JOBS = {".vci", ".vci-log", ".vci-package", ".vci-deploy", ".vci-test", ".vci-promote", ".vci-rollback"}
JOBS = {"package", "deploy-staging", "smoke-test", "promote-production", "rollback-production"}
ORIGIN = "https://gitlab.example.com/ml/models.git"  # gitlab-ci-local derives CI_SERVER_URL and the project from it
# Where gitlab-ci-local looks for the example's `include: project: vci-dev/vci, ref: v1` before fetching it
# (as GitLab reads it from that project): this checkout's template, as act is given vci-dev/vci@v1.
INCLUDED = Path(".gitlab-ci-local/includes/gitlab.example.com/vci-dev/vci/v1/gitlab_ci/vci.gitlab-ci.yml")
PROJECT = "gitlab"  # its own Deployments (gitlab-staging, gitlab-production) and repositories on the shared cluster
STORE = "s3://ci-store/vci-gitlab"  # its own prefix: moto keeps one state for the process, the other CI tests share it
STORE_KEY_ID, STORE_SECRET = "AKIAGITLABEXAMPLE", "store-secret-gitlab-2718"  # moto takes any keys
# What a GitLab runner sets that gitlab-ci-local does not: GITLAB_CI is "false" there (a local run), and
# CI_JOB_MANUAL is "true" only in a job someone started by hand.
RUNNER = ["--variable", "GITLAB_CI=true"]
STARTED_BY_HAND = ["--variable", "CI_JOB_MANUAL=true"]
PUSHER = ["-c", "user.email=pusher@example.com", "-c", "user.name=Pusher"]


class Loader(yaml.SafeLoader):
    """YAML with GitLab's !reference tag (kept as the list it names)."""


Loader.add_constructor("!reference", lambda loader, node: {"!reference": loader.construct_sequence(node)})


def gitlab_ci_local() -> str:
    path = os.environ.get("VCI_GITLAB_CI_LOCAL") or shutil.which("gitlab-ci-local")
    if not path:
        pytest.fail("gitlab-ci-local is not installed: bash scripts/test.sh installs it (VCI_GITLAB_CI_LOCAL)")
    return path


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def model_repository(path: Path, example: str | None = None) -> Path:
    """A git repository on the default branch with the model, the example pipeline (or ``example``), and
    the template where gitlab-ci-local finds the example's project include."""
    repo = make_project(path)
    (repo / ".gitlab-ci.yml").write_text(example or EXAMPLE.read_text())
    (repo / "gitlab_ci").mkdir()
    shutil.copy(TEMPLATE, repo / "gitlab_ci" / TEMPLATE.name)  # for an `include: local:` variant
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", ORIGIN)
    git(repo, "add", ".")
    git(repo, *PUSHER, "commit", "-qm", "model")
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")  # the default branch, as a clone knows it
    git(repo, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
    (repo / INCLUDED).parent.mkdir(parents=True)
    shutil.copy(TEMPLATE, repo / INCLUDED)
    return repo


def run(repo: Path, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [gitlab_ci_local(), "--no-color", *args],
        cwd=repo,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def preview(repo: Path) -> dict:
    """The pipeline as gitlab-ci-local expands it: includes, inputs, extends and !reference resolved."""
    out = run(repo, "--preview")
    assert out.returncode == 0, out.stdout + out.stderr
    return yaml.safe_load(out.stdout[out.stdout.index("---\n") :])


def scripts(job: dict) -> str:
    return "\n".join(job.get("before_script", []) + job["script"])


def test_the_template_defines_the_hidden_jobs_and_takes_inputs():
    spec, jobs = yaml.load_all(TEMPLATE.read_text(), Loader=Loader)
    assert set(spec["spec"]["inputs"]) == {"install", "python"}
    assert all(i["description"] and "default" in i for i in spec["spec"]["inputs"].values())
    assert set(jobs) == HIDDEN_JOBS
    assert all(jobs[name]["extends"] == ".vci" for name in HIDDEN_JOBS - {".vci"})
    assert jobs[".vci"]["artifacts"]["reports"]["dotenv"] == jobs[".vci"]["variables"]["VCI_DOTENV"]


def test_the_included_template_expands_into_the_example_pipeline(tmp_path):
    pipeline = preview(model_repository(tmp_path / "repo"))
    jobs = {name: job for name, job in pipeline.items() if isinstance(job, dict) and "script" in job}
    assert set(jobs) == JOBS
    assert pipeline["workflow"]["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    for name, job in jobs.items():
        assert job["artifacts"]["reports"]["dotenv"] == job["variables"]["VCI_DOTENV"] == "vci.env", name
        assert job["before_script"][0] == 'rm -f "$VCI_DOTENV"', name  # a report holds this job's results only
        assert job["variables"]["VCI_INSTALL"] == "", name  # the input's default: the runner's vci
        for secret in ("VCI_REGISTRY_PASSWORD", "AWS_SECRET_ACCESS_KEY", "KUBECONFIG"):
            assert secret not in scripts(job), f"{name}: a script names {secret}"  # vci reads them itself
    # the package job runs .vci-log's script (by !reference), then packages the run it logged
    assert jobs["package"]["script"][0].startswith('if [ -n "${VCI_RUN_ID:-}" ]') and "vci package" in scripts(
        jobs["package"]
    )
    assert jobs["deploy-staging"]["environment"] == {"name": "$VCI_ENVIRONMENT"}
    assert jobs["deploy-staging"]["variables"]["VCI_ENVIRONMENT"] == "staging"
    assert jobs["smoke-test"]["environment"] == {"name": "$VCI_ENVIRONMENT", "action": "verify"}
    assert "VCI_TESTED_DIGEST=$tested" in scripts(jobs["smoke-test"])
    promote = jobs["promote-production"]
    assert (promote["when"], promote["allow_failure"], promote["interruptible"]) == ("manual", False, False)
    assert promote["environment"] == {"name": "production", "deployment_tier": "production"}
    assert promote["needs"] == [{"job": "smoke-test", "artifacts": True, "optional": False}]
    assert '--digest "$VCI_TESTED_DIGEST" --approved-by "$GITLAB_USER_LOGIN"' in promote["script"][-1]
    rollback = jobs["rollback-production"]
    assert (rollback["when"], rollback["needs"], rollback["environment"]["name"]) == ("manual", [], "production")
    assert rollback["script"] == ['vci rollback --env "$VCI_ENVIRONMENT" ${VCI_ROLLBACK_TO:+--to "$VCI_ROLLBACK_TO"}']
    # the expansion passed GitLab's JSON schema, which gitlab-ci-local checks: a variant that breaks it fails
    broken = EXAMPLE.read_text().replace("  when: manual\n  allow_failure: false\n", "  when: by-hand\n", 1)
    out = run(model_repository(tmp_path / "broken", broken), "--preview")
    assert out.returncode == 1 and "found by-hand) at promote-production.when" in out.stderr, out.stderr


def test_an_install_input_reaches_every_job(tmp_path):
    install = "git+https://gitlab.example.com/vci-dev/vci.git@v1"
    example = EXAMPLE.read_text().replace(
        "  - project: vci-dev/vci\n    ref: v1\n    file: gitlab_ci/vci.gitlab-ci.yml\n",
        f"  - local: gitlab_ci/vci.gitlab-ci.yml\n    inputs:\n      install: {install}\n      python: python3.11\n",
    )
    assert example != EXAMPLE.read_text()
    pipeline = preview(model_repository(tmp_path / "repo", example))
    for name in JOBS:
        variables = pipeline[name]["variables"]
        assert (variables["VCI_INSTALL"], variables["VCI_PYTHON"]) == (install, "python3.11"), name


def hidden_job(name: str) -> dict:
    return list(yaml.load_all(TEMPLATE.read_text(), Loader=Loader))[1][name]


def test_the_smoke_test_marks_tested_only_the_digest_the_pipeline_deployed(tmp_path):
    """.vci-test's check, in sh after vci test wrote the digest it tested to the report."""
    save, _, check = hidden_job(".vci-test")["script"]
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64

    def smoke(deployed: str, tested: str) -> tuple[subprocess.CompletedProcess, str]:
        report = tmp_path / "vci.env"
        report.write_text(f"VCI_DIGEST={tested}\n")
        env = clean_env(VCI_DOTENV=str(report), VCI_ENVIRONMENT="staging", VCI_DIGEST=deployed)
        out = subprocess.run(["sh", "-ec", f"{save}\n{check}"], env=env, capture_output=True, text=True)
        return out, report.read_text()

    out, report = smoke(a, a)
    assert out.returncode == 0 and report == f"VCI_DIGEST={a}\nVCI_TESTED_DIGEST={a}\n"
    out, report = smoke(a, b)
    assert out.returncode == 1 and "VCI_TESTED_DIGEST" not in report
    assert f"staging runs {b}, not the {a} this pipeline deployed" in out.stderr
    out, report = smoke("", b)  # a test job that follows no deploy: what it tested
    assert out.returncode == 0 and report.endswith(f"VCI_TESTED_DIGEST={b}\n")


RUN_ID = "20261124-071203-3f9a1c7e"


def one_job_pipeline(inputs: dict) -> str:
    """The template included locally with ``inputs``, and one job that only needs vci to run."""
    return (
        f"include:\n  - local: gitlab_ci/vci.gitlab-ci.yml\n    inputs: {json.dumps(inputs)}\n"
        f'check:\n  extends: .vci-log\n  variables:\n    VCI_RUN_ID: "{RUN_ID}"\n'
    )


def path_without_vci() -> str:
    """The PATH with no directory that holds a ``vci`` (a runner without vci)."""
    return ":".join(d for d in os.environ["PATH"].split(":") if d and not (Path(d) / "vci").exists())


@pytest.mark.slow
def test_a_runner_without_vci_is_told_so_and_the_install_input_installs_it(tmp_path):
    runner = clean_env(PATH=path_without_vci(), PIP_NO_BUILD_ISOLATION="0", PIP_REQUIRE_VIRTUALENV="1")
    runner.pop("PYTHONPATH", None)
    bare = model_repository(tmp_path / "bare", one_job_pipeline({}))
    out = run(bare, "--shell-isolation", *RUNNER, "check", env=runner)
    assert out.returncode != 0, out.stdout
    assert "vci: error: no vci on this runner: give the jobs an image with vci, or include the template" in out.stdout

    # install: vci from a copy of this repository, into the Python the python input names (a virtualenv)
    source = tmp_path / "vci-src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", ".vci", "__pycache__", "*.egg-info", "build", "tests", "*.whl"),
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    inputs = {"install": str(source), "python": str(venv / "bin" / "python")}
    installing = model_repository(tmp_path / "installing", one_job_pipeline(inputs))
    out = run(
        installing, "--shell-isolation", *RUNNER, "check", env=dict(runner, PATH=f"{venv / 'bin'}:{runner['PATH']}")
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "vci, version" in out.stdout and list(venv.glob("lib/python3*/site-packages/vci/ci/gitlab.py"))
    report = installing / ".gitlab-ci-local/artifacts/check/.gitlab-ci-reports/dotenv/vci.env"
    assert report.read_text() == f"VCI_RUN_ID={RUN_ID}\n"


@pytest.fixture()
def gitlab_sandbox(tmp_path, cluster):
    """A model repository delivering ``PROJECT`` to ``cluster`` with the example pipeline, a moto S3 store,
    and its CI/CD variables as gitlab-ci-local reads a GitLab project's (``--home``'s variables.yml): the
    store's keys, the registry login and the kubeconfig (a file variable, scoped to staging and production)
    reach the jobs only from there, never from the runner's environment."""
    from s3server import create_bucket, dummy_aws_env, start_moto

    server, endpoint = start_moto()
    create_bucket(endpoint, "ci-store")
    repo = model_repository(tmp_path / "repo")
    cluster.write_vci_yaml(repo, PROJECT)
    git(repo, *PUSHER, "commit", "-qam", "deliver to the cluster")
    kubeconfig = cluster.kubeconfig.read_text()
    variables = {
        "VCI_STORE": STORE,
        "VCI_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": STORE_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": STORE_SECRET,  # masked, protected
        "VCI_MODEL": "model.py:Doubler",
        "VCI_ARTIFACTS": "factor=factor.txt",
        "VCI_REPOSITORY": f"{cluster.registry.host}/ml/{PROJECT}-staging",
        "VCI_BASE_IMAGE": cluster.base,
        "VCI_REGISTRY_USER": REGISTRY_USER,
        "VCI_REGISTRY_PASSWORD": REGISTRY_PASSWORD,  # masked, protected
        # a file variable (a PEM has several lines: GitLab cannot mask it): production's policy asks for signatures
        "VCI_SIGNING_KEY_FILE": {"type": "file", "values": {"*": SIGNING_KEY}},
        "KUBECONFIG": {"type": "file", "values": {"staging": kubeconfig, "production": kubeconfig}},
    }
    home = tmp_path / "home"
    (home / ".gitlab-ci-local").mkdir(parents=True)
    (home / ".gitlab-ci-local" / "variables.yml").write_text(yaml.safe_dump({"global": variables}))
    aws = {k: v for k, v in dummy_aws_env().items() if not k.startswith(("AWS_ACCESS", "AWS_SECRET", "AWS_SESSION"))}
    runner = clean_env(**aws, DOCKER_CONFIG=str(tmp_path / "no-docker-config"))
    runner["PATH"] = f"{Path(sys.executable).parent}:{runner['PATH']}"  # this Python's vci first
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "KUBECONFIG"):
        runner.pop(name, None)
    operator = dict(
        runner,
        VCI_STORE=STORE,
        VCI_S3_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=STORE_KEY_ID,
        AWS_SECRET_ACCESS_KEY=STORE_SECRET,
        VCI_CACHE_DIR=str(tmp_path / "cache"),
        KUBECONFIG=str(cluster.kubeconfig),
        VCI_REGISTRY_USER=REGISTRY_USER,
        VCI_REGISTRY_PASSWORD=REGISTRY_PASSWORD,
    )
    yield {"repo": repo, "home": home, "runner": runner, "operator": operator, "cluster": cluster}
    stop_environments(repo, operator)
    server.stop()
    for environment in ("staging", "production"):
        assert cluster.deployment(PROJECT, environment) is None, f"{environment} was not undeployed"


def pipeline(sandbox, *args: str, user: str, succeed: bool = True) -> str:
    """gitlab-ci-local in the repository, as ``user`` (GITLAB_USER_LOGIN: their e-mail's local part), each
    job in a fresh copy of the tracked files; it must succeed (or fail). No secret may show in its log."""
    repo, cluster = sandbox["repo"], sandbox["cluster"]
    git(repo, "config", "user.email", f"{user}@example.com")
    out = run(
        repo,
        "--home",
        str(sandbox["home"]),
        "--shell-isolation",
        "--no-artifacts-to-source",
        *RUNNER,
        *args,
        env=sandbox["runner"],
        timeout=420,
    )
    logs = (repo / ".gitlab-ci-local/output").glob("*.log")
    log = out.stdout + out.stderr + "".join(path.read_text() for path in logs)
    assert (out.returncode == 0) == succeed, out.stdout[-6000:] + out.stderr[-2000:]
    for secret in (REGISTRY_PASSWORD, STORE_SECRET, cluster.kube.token):
        assert secret not in log, "a job log shows a secret"
    return out.stdout + out.stderr


def report(sandbox, job: str) -> dict[str, str]:
    """The dotenv report a job left (as gitlab-ci-local keeps it for the jobs that need it)."""
    path = sandbox["repo"] / ".gitlab-ci-local/artifacts" / job / ".gitlab-ci-reports/dotenv/vci.env"
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def history(sandbox, environment: str) -> list[dict]:
    out = run_vci("history", "--env", environment, "--output", "json", cwd=sandbox["repo"], env=sandbox["operator"])
    return json.loads(out.stdout)["releases"]


def section_headers(sandbox, job: str) -> list[str]:
    """The headers of the job log sections vci opened in a job, each closed under its own name."""
    log = (sandbox["repo"] / ".gitlab-ci-local/output" / f"{job}.log").read_bytes().decode()  # CRs kept
    starts = re.findall(r"\x1b\[0Ksection_start:\d+:([\w.-]+)\r\x1b\[0K(.*)", log)
    ends = re.findall(r"\x1b\[0Ksection_end:\d+:([\w.-]+)\r", log)
    assert [name for name, _ in starts] == ends, log
    return [header for _, header in starts]


def live_image(deployment: dict) -> str:
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


@pytest.mark.slow
def test_the_example_pipeline_promotes_the_tested_digest_by_hand(gitlab_sandbox):
    sandbox, cluster = gitlab_sandbox, gitlab_sandbox["cluster"]
    promote = ["promote-production", "--manual", "promote-production"]  # that job alone, as a manual one

    # Before any smoke test, the production job refuses: there is no tested digest to promote.
    refused = pipeline(sandbox, *STARTED_BY_HAND, *promote, user="release-manager", succeed=False)
    assert "vci: error: no tested digest: promote-production promotes only the digest a smoke test passed" in refused
    assert cluster.deployment(PROJECT, "production") is None

    # The push's pipeline: package, deploy to staging, smoke test; the manual jobs wait.
    pipeline(sandbox, user="pusher")
    packaged, deployed, tested = (report(sandbox, job) for job in ("package", "deploy-staging", "smoke-test"))
    digest = deployed["VCI_DIGEST"]
    staging_image = f"{cluster.registry.host}/ml/{PROJECT}-staging@{digest}"
    assert packaged["VCI_IMAGE"] == staging_image and packaged["VCI_RUN_ID"]  # staging runs what package pushed
    assert live_image(cluster.deployment(PROJECT, "staging")) == staging_image
    assert tested["VCI_TESTED_DIGEST"] == tested["VCI_DIGEST"] == digest
    assert deployed["VCI_RELEASE_ID"] == history(sandbox, "staging")[0]["release_id"]
    assert deployed["VCI_ENDPOINT"]
    assert cluster.deployment(PROJECT, "production") is None
    assert section_headers(sandbox, "package") == ["vci log", "vci package"]
    assert [section_headers(sandbox, job) for job in ("deploy-staging", "smoke-test")] == [["vci deploy"], ["vci test"]]
    revision = image_label(cluster, staging_image, "org.opencontainers.image.revision")
    assert revision == git(sandbox["repo"], "rev-parse", "HEAD")  # CI_COMMIT_SHA

    # Run as a plain job (nobody started it by hand), the production job refuses too.
    refused = pipeline(sandbox, *promote, user="pusher", succeed=False)
    assert "promote-production was not started by hand, so nobody approved it" in refused
    assert cluster.deployment(PROJECT, "production") is None and history(sandbox, "production") == []

    # A release manager starts it: the tested digest goes to production, copied, with them as the approver.
    pipeline(sandbox, *STARTED_BY_HAND, *promote, user="release-manager")
    production_image = f"{cluster.registry.host}/ml/{PROJECT}@{digest}"
    assert live_image(cluster.deployment(PROJECT, "production")) == production_image
    promoted = report(sandbox, "promote-production")
    [record] = history(sandbox, "production")
    assert (record["action"], record["outcome"], record["digest"]) == ("promote", "succeeded", digest)
    assert promoted["VCI_DIGEST"] == digest and promoted["VCI_RELEASE_ID"] == record["release_id"]
    assert (record["approver"], record["who"]) == ("release-manager", "gitlab:release-manager")
    [staged] = history(sandbox, "staging")
    assert staged["who"] == "gitlab:pusher"  # who pushed, for the pipeline's own jobs
    assert record["ci"]["system"] == "gitlab" and record["ci"]["environment"] == "production"
    assert record["ci"]["pipeline_url"] == staged["ci"]["pipeline_url"]  # the same pipeline, started later
    assert re.fullmatch(r"https://gitlab\.example\.com/ml/models/-/jobs/\d+", record["ci_url"])
    assert section_headers(sandbox, "promote-production") == ["vci promote"]
    answer = run_vci("predict", "--env", "production", "--data", "[5, 7]", "-o", "json", **context(sandbox))
    assert json.loads(answer.stdout)["prediction"] == [10, 14]  # production's pod, through the API server's proxy


def context(sandbox) -> dict:
    return {"cwd": sandbox["repo"], "env": sandbox["operator"]}


def image_label(cluster, image: str, label: str) -> str:
    """A label of an image's config, read by skopeo (an independent client) with the registry login."""
    out = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--config",
            "--tls-verify=false",
            "--creds",
            f"{REGISTRY_USER}:{REGISTRY_PASSWORD}",
            f"docker://{image}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)["config"]["Labels"][label]
