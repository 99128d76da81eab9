"""The Jenkinsfile and shared library: they parse, run for real in a Groovy harness, and keep secrets safe."""

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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

JENKINS = ROOT / "jenkins"
HARNESS = Path(__file__).parent / "harness"
JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-amd64"
CREDENTIALS = {
    "vci-store": {"username": "AKIAEXAMPLE", "password": "store-secret-1234"},
    "vci-registry": {"username": REGISTRY_USER, "password": REGISTRY_PASSWORD},
    "vci-kubeconfig": {"fileName": "kubeconfig", "content": "apiVersion: v1\nkind: Config\nclusters: []\n"},
    "vci-signing-key": {"fileName": "ci.key", "content": SIGNING_KEY},
}
VERBS = ("vciPackage", "vciDeploy", "vciTest", "vciPromote", "vciRollback")
WORKING_STAGES = ("Package", "Deploy staging", "Smoke test", "Promote to production")
WORKING_STAGE_AGENTS = dict.fromkeys(WORKING_STAGES, "any")


def groovy(*args, env=None, timeout=180) -> subprocess.CompletedProcess:
    binary = shutil.which("groovy")
    if not binary:
        pytest.fail("groovy is not installed: apt-get install -y groovy")
    full_env = dict(env or clean_env(), JAVA_HOME=JAVA_HOME)
    return subprocess.run([binary, *map(str, args)], env=full_env, capture_output=True, text=True, timeout=timeout)


def groovy_files():
    return [
        JENKINS / "Jenkinsfile",
        *sorted((JENKINS / "vars").glob("*.groovy")),
        *sorted(HARNESS.glob("*.groovy")),
    ]


def test_every_groovy_file_parses(tmp_path):
    out = groovy(HARNESS / "check.groovy", *groovy_files())
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("ok ") == len(groovy_files())
    broken = tmp_path / "Jenkinsfile"
    broken.write_text((JENKINS / "Jenkinsfile").read_text().replace("stages {", "stages {{", 1))
    out = groovy(HARNESS / "check.groovy", broken)
    assert out.returncode == 1 and "FAIL" in out.stdout


def test_each_library_step_has_a_call_and_a_help_file():
    for name in VERBS:
        source = (JENKINS / "vars" / f"{name}.groovy").read_text()
        assert re.search(r"^def call\(Map args = \[:\]\)", source, re.M), name
        assert (JENKINS / "vars" / f"{name}.txt").read_text().startswith(f"{name}("), name
        assert f"{name}(" in (JENKINS / "Jenkinsfile").read_text() or name in (
            "vciRollback",
            "vciPackage",
        ), name


SH_CALL = re.compile(r"""\bsh\s*\(?\s*(?:script\s*:\s*)?("{3}|'{3}|"|')(.*?)\1""", re.S)


def credential_variables(text: str) -> set[str]:
    return set(re.findall(r"(?:variable|usernameVariable|passwordVariable)\s*:\s*'(\w+)'", text))


def interpolated_credentials(text: str, credentials: set[str]) -> list[str]:
    """``sh`` steps whose double-quoted string interpolates a credential (Groovy would put the secret into
    the command line and the build log; single quotes leave it to the shell's environment)."""
    found = []
    for quote, body in SH_CALL.findall(text):
        if quote.startswith('"'):
            found += [name for name in credentials if re.search(r"\$\{?(env\.)?" + name + r"\b", body)]
    return found


def test_no_sh_step_interpolates_a_credential_in_double_quotes():
    texts = {p.name: p.read_text() for p in [JENKINS / "Jenkinsfile", *(JENKINS / "vars").glob("*.groovy")]}
    credentials = set().union(*map(credential_variables, texts.values()))
    bound = {"AWS_SECRET_ACCESS_KEY", "VCI_REGISTRY_USER", "VCI_REGISTRY_PASSWORD", "KUBECONFIG"}
    assert bound <= credentials
    for name, text in texts.items():
        assert interpolated_credentials(text, credentials) == [], name
    assert SH_CALL.findall(texts["Jenkinsfile"]), "the check sees the Jenkinsfile's sh steps"
    leaky = texts["Jenkinsfile"].replace(
        "sh 'vci history --env production --limit 5 || true'",
        'sh "echo ${AWS_SECRET_ACCESS_KEY} | vci history"',
    )
    assert interpolated_credentials(leaky, credentials) == ["AWS_SECRET_ACCESS_KEY"]


def run_pipeline(
    tmp_path,
    workspace,
    store,
    params,
    approver=None,
    credentials=CREDENTIALS,
    extra_env=None,
    timeout=180,
    jenkinsfile=JENKINS / "Jenkinsfile",
):
    """Run the Jenkinsfile (or a variant of it) in the harness; the store's keys, the registry login and the
    kubeconfig reach its sh steps only through withCredentials."""
    env = clean_env(
        VCI_STORE=str(store),
        VCI_USER="jenkins",
        HARNESS_PARAMS=json.dumps(params),
        HARNESS_CREDENTIALS=json.dumps(credentials),
        **(extra_env or {}),
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "KUBECONFIG"):
        env.pop(name, None)
    env["DOCKER_CONFIG"] = str(tmp_path / "no-docker-config")  # no registry login from a Docker config
    if approver:
        env["HARNESS_APPROVER"] = approver
    report = tmp_path / "report.json"
    out = groovy(
        HARNESS / "run_pipeline.groovy",
        jenkinsfile,
        JENKINS / "vars",
        workspace,
        report,
        env=env,
        timeout=timeout,
    )
    assert report.exists(), out.stdout + out.stderr
    return out, json.loads(report.read_text())


@pytest.fixture()
def jenkins_workspace(tmp_path):
    workspace = make_project(tmp_path / "workspace")
    store = tmp_path / "store"
    env = clean_env(VCI_STORE=str(store), VCI_CACHE_DIR=str(tmp_path / "cache"))
    yield workspace, store, env
    stop_environments(workspace, env)


@pytest.fixture()
def s3_workspace(tmp_path, cluster):
    """A workspace delivering to the cluster (project ``jenkins``: Kubernetes staging and production, images
    on the registry) with its store in a bucket on a moto S3 server. Only the pipeline's withCredentials
    bindings give the build the store's keys, the registry login and the kubeconfig."""
    from s3server import create_bucket, dummy_aws_env, start_moto

    server, endpoint = start_moto()
    aws = dummy_aws_env()
    create_bucket(endpoint, "ml-artifacts")
    workspace = make_project(tmp_path / "workspace")
    cluster.write_vci_yaml(workspace, "jenkins")
    no_keys = {k: v for k, v in aws.items() if not k.startswith(("AWS_ACCESS", "AWS_SECRET", "AWS_SESSION"))}
    build_env = dict(no_keys, VCI_S3_ENDPOINT_URL=endpoint)
    check_env = clean_env(
        **aws,
        VCI_S3_ENDPOINT_URL=endpoint,
        VCI_STORE="s3://ml-artifacts/vci",
        VCI_CACHE_DIR=str(tmp_path / "cache"),
        KUBECONFIG=str(cluster.kubeconfig),
        VCI_REGISTRY_USER=REGISTRY_USER,
        VCI_REGISTRY_PASSWORD=REGISTRY_PASSWORD,
    )
    yield workspace, "s3://ml-artifacts/vci", build_env, check_env
    stop_environments(workspace, check_env)
    server.stop()


@pytest.mark.slow
def test_the_jenkinsfile_delivers_to_production_with_the_recorded_approver(tmp_path, s3_workspace, cluster):
    workspace, store, build_env, env = s3_workspace
    params = {
        "MODEL": "model.py:Doubler",
        "ARTIFACTS": "factor=factor.txt",
        "STRATEGY": "blue-green",  # production runs nothing yet: deployed directly, recorded as blue-green
        "IMAGE_REPOSITORY": f"{cluster.registry.host}/ml/jenkins-staging",
        "BASE_IMAGE": cluster.base,
    }
    credentials = dict(
        CREDENTIALS,
        **{
            "vci-store": {"username": "testing", "password": "testing"},
            "vci-kubeconfig": {"fileName": "kubeconfig", "content": cluster.kubeconfig.read_text()},
        },
    )
    out, report = run_pipeline(
        tmp_path,
        workspace,
        store,
        params,
        approver="release-manager",
        credentials=credentials,
        extra_env=build_env,
        timeout=420,
    )
    assert out.returncode == 0 and report["result"] == "SUCCESS", out.stdout[-3000:] + out.stderr[-3000:]
    assert [s["status"] for s in report["stages"] if "stage" in s] == ["success"] * 5
    assert [s["post"] for s in report["stages"] if "post" in s] == ["success"]
    assert [(p["stage"], p["post"], p["status"]) for p in report["stagePosts"]] == [
        *((name, "cleanup", "success") for name in ("Package", "Deploy staging", "Smoke test")),
        ("Promote to production", "always", "success"),
        ("Promote to production", "cleanup", "success"),
    ]
    # Package pushed the image; staging runs it by digest, production the same digest from its own repository.
    built = re.search(r"^built (\S+)$", out.stdout, re.M).group(1)
    repository, digest = built.split("@")
    assert repository == f"{cluster.registry.host}/ml/jenkins-staging" and digest.startswith("sha256:")
    assert report["approvals"] == [
        {
            "stage": "Approval",
            "message": f"Promote {digest}, tested on staging, to production?",
            "submitter": "release-managers",
            "approver": "release-manager",
            "timeout": "timeout(time: 1, unit: 'DAYS')",
        }
    ]
    assert f"'--digest' '{digest}'" in out.stdout  # the approved digest reached vci promote
    # no executor waits for the approval, and nothing outside it cuts its day short (the harness checks both)
    assert report["agent"] == "none" and "timeout" not in report["options"]
    assert {"disableConcurrentBuilds", "buildDiscarder"} <= set(report["options"])
    assert report["stageAgents"] == dict(WORKING_STAGE_AGENTS, Approval="none")
    assert all(report["stageOptions"][name] == ["timeout"] for name in report["stageAgents"])
    assert live_image(cluster.deployment("jenkins", "staging")) == built
    production_deployment = cluster.deployment("jenkins", "production")
    assert production_deployment["metadata"]["namespace"] == "ml-prod"
    assert live_image(production_deployment) == f"{cluster.registry.host}/ml/jenkins@{digest}"
    staging = json.loads(run_vci("status", "--env", "staging", "--output", "json", cwd=workspace, env=env).stdout)
    production = json.loads(run_vci("status", "--env", "production", "--output", "json", cwd=workspace, env=env).stdout)
    assert production["digest"] == staging["digest"] == digest and production["state"] == "ready"
    history = json.loads(run_vci("history", "--env", "production", "--output", "json", cwd=workspace, env=env).stdout)[
        "releases"
    ]
    assert [(r["action"], r["approver"], r["outcome"], r["digest"], r["strategy"]) for r in history] == [
        ("promote", "release-manager", "succeeded", digest, "blue-green")  # STRATEGY reached vci promote
    ]
    assert "'--strategy' 'blue-green'" in out.stdout
    assert history[0]["ci_url"] == "http://jenkins.example.com/job/vci/1/"
    assert history[0]["release_id"] in report["description"]
    assert "'--approved-by' 'release-manager'" in out.stdout  # the submitter reached vci promote
    # production answers through the API server's service proxy, from a pod pulled from the registry
    answer = run_vci("predict", "--env", "production", "--data", "[5, 7]", "-o", "json", cwd=workspace, env=env)
    assert json.loads(answer.stdout)["prediction"] == [10, 14]

    assert REGISTRY_PASSWORD not in out.stdout + out.stderr
    assert cluster.kube.token not in out.stdout + out.stderr
    assert "PRIVATE KEY" not in out.stdout + out.stderr  # the signing key reached vci as a file only
    assert f"verified {digest}: signed by" in out.stdout  # Deploy staging checked Package's signature
    assert history[0]["verified"]["signed_by"] and len(history[0]["verified"]["attestations"]) == 2
    secret_files = tmp_path / "workspace@tmp" / "secretFiles"  # where the file binding wrote the kubeconfig
    assert secret_files.is_dir() and not list(secret_files.rglob("*"))  # ... and removed it after each block
    # the run, its blobs and the ledger are in the bucket: the bound keys reached every sh step
    from s3server import bucket_keys

    keys = bucket_keys(env["VCI_S3_ENDPOINT_URL"], "ml-artifacts", "vci/")
    assert any("/ledger/production/" in "/" + k for k in keys) and any("/runs/" in "/" + k for k in keys)
    assert not (workspace / ".vci-cache").exists()  # post { cleanup } ran its sh step


def live_image(deployment: dict) -> str:
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


LOCAL_PARAMS = {"MODEL": "model.py:Doubler", "ARTIFACTS": "factor=factor.txt"}


def stage_statuses(report: dict) -> dict:
    return {s["stage"]: s["status"] for s in report["stages"] if "stage" in s}


def stage_error(report: dict, name: str) -> str:
    return next(s.get("error", "") for s in report["stages"] if s.get("stage") == name)


def vci_json(*args, cwd, env) -> dict:
    return json.loads(run_vci(*args, "--output", "json", cwd=cwd, env=env).stdout)


def variant(tmp_path, name: str, *replacements: tuple[str, str]) -> Path:
    """A copy of the Jenkinsfile with each (old, new) replaced once; each ``old`` must be there."""
    text = (JENKINS / "Jenkinsfile").read_text()
    for old, new in replacements:
        assert text.count(old) >= 1, f"the Jenkinsfile no longer has {old!r}"
        text = text.replace(old, new, 1)
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.slow
def test_an_unanswered_approval_stops_before_production(tmp_path, jenkins_workspace):
    workspace, store, env = jenkins_workspace
    out, report = run_pipeline(tmp_path, workspace, store, LOCAL_PARAMS, approver=None)
    assert out.returncode == 1 and report["result"] == "FAILURE"
    assert stage_statuses(report) == {
        "Package": "success",
        "Deploy staging": "success",
        "Smoke test": "success",
        "Approval": "failure",
        "Promote to production": "skipped",
    }
    # the input was reached without an executor and with its whole day, then aborted
    assert "Rejected by nobody" in stage_error(report, "Approval")
    assert [a["timeout"] for a in report["approvals"]] == ["timeout(time: 1, unit: 'DAYS')"]
    assert [s["post"] for s in report["stages"] if "post" in s] == ["failure"]
    assert [(p["stage"], p["post"]) for p in report["stagePosts"]] == [
        (name, "cleanup") for name in ("Package", "Deploy staging", "Smoke test")
    ]
    assert vci_json("history", "--env", "production", cwd=workspace, env=env)["releases"] == []
    assert vci_json("status", "--env", "staging", cwd=workspace, env=env)["state"] == "ready"


TOP_AGENT = ("    agent none\n\n    parameters", "    agent any\n\n    parameters")
APPROVAL_AGENT = (
    "            agent none\n            options { timeout(time: 1, unit: 'DAYS') }",
    "            agent any\n            options { timeout(time: 1, unit: 'DAYS') }",
)
APPROVAL_IN_NODE = (
    (
        "                script {\n                    env.VCI_APPROVER",
        "                script { node {\n                    env.VCI_APPROVER",
    ),
    ('echo "approved by ${env.VCI_APPROVER}"', 'echo "approved by ${env.VCI_APPROVER}" }'),
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "replacements, holder",
    [
        # issue 22's defect: the pipeline's agent holds its executor through the stage's `agent none`
        ((TOP_AGENT,), "the pipeline's agent any"),
        ((APPROVAL_AGENT,), "stage 'Approval' agent any"),
        (APPROVAL_IN_NODE, "node { } in stage 'Approval'"),
    ],
    ids=["pipeline-agent-any", "approval-agent-any", "node-step"],
)
def test_the_harness_fails_an_approval_that_holds_an_executor(tmp_path, jenkins_workspace, replacements, holder):
    workspace, store, env = jenkins_workspace
    jenkinsfile = variant(tmp_path, "Jenkinsfile.executor", *replacements)
    out, report = run_pipeline(
        tmp_path, workspace, store, LOCAL_PARAMS, approver="release-manager", jenkinsfile=jenkinsfile
    )
    assert report["result"] == "FAILURE"
    assert stage_statuses(report)["Approval"] == "failure" and report["approvals"] == []
    error = stage_error(report, "Approval")
    assert "would hold an executor" in error and holder in error, error
    assert vci_json("history", "--env", "production", cwd=workspace, env=env)["releases"] == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "pipeline_timeout, shown, minutes",
    [
        ("timeout(time: 2, unit: 'HOURS')", "timeout(time: 2, unit: 'HOURS')", 120),  # issue 22's defect
        # MINUTES when no unit is given: a minute short of a day
        ("timeout(time: 1439)", "timeout(time: 1439, unit: 'MINUTES')", 1439),
        ("timeout(time: 2, unit: 'DAYS')", None, None),
    ],
    ids=["2-hours", "1439-minutes", "2-days"],
)
def test_the_harness_fails_an_outer_timeout_that_ends_before_the_approvals(
    tmp_path, jenkins_workspace, pipeline_timeout, shown, minutes
):
    workspace, store, env = jenkins_workspace
    options = "        disableConcurrentBuilds()"
    added = (options, f"        {pipeline_timeout}\n{options}")
    jenkinsfile = variant(tmp_path, "Jenkinsfile.timeout", added)
    out, report = run_pipeline(
        tmp_path, workspace, store, LOCAL_PARAMS, approver="release-manager", jenkinsfile=jenkinsfile
    )
    assert "timeout" in report["options"]
    if minutes is None:  # an outer timeout longer than the approval's leaves it its day
        assert report["result"] == "SUCCESS", out.stdout[-3000:] + out.stderr[-3000:]
        return
    assert report["result"] == "FAILURE" and stage_statuses(report)["Approval"] == "failure"
    error = stage_error(report, "Approval")
    assert "cannot wait its timeout(time: 1, unit: 'DAYS') (the options of stage 'Approval')" in error, error
    ends = re.escape(f"{shown} of the pipeline's options ends after ")
    left = re.search(ends + r"(\d+) h (\d+) min", error)
    assert minutes - 5 <= int(left[1]) * 60 + int(left[2]) < minutes, error  # what is left when input starts


HISTORY_IN_PIPELINE_POST = (
    "    post {\n        success {",
    "    post {\n        always {\n            vciCredentials() {\n"
    "                sh 'vci history --env production --limit 5 || true'\n"
    "            }\n        }\n        success {",
)
PACKAGE_WITHOUT_AGENT = ("        stage('Package') {\n            agent any\n", "        stage('Package') {\n")


@pytest.mark.slow
@pytest.mark.parametrize(
    "replacement, where",
    [
        # production's history printed from the pipeline's post, where `agent none` gives no workspace
        (HISTORY_IN_PIPELINE_POST, {"post": "always"}),
        (PACKAGE_WITHOUT_AGENT, {"stage": "Package"}),
    ],
    ids=["pipeline-post", "stage-without-agent"],
)
def test_a_step_that_needs_a_workspace_fails_outside_any_agent(tmp_path, jenkins_workspace, replacement, where):
    workspace, store, env = jenkins_workspace
    jenkinsfile = variant(tmp_path, "Jenkinsfile.nonode", replacement)
    params = dict(LOCAL_PARAMS, PROMOTE=False)
    out, report = run_pipeline(tmp_path, workspace, store, params, jenkinsfile=jenkinsfile)
    assert report["result"] == "FAILURE"
    entry = next(s for s in report["stages"] if where.items() <= s.items())
    assert entry["status"] == "failure"
    assert "Required context class hudson.FilePath is missing" in entry["error"], entry
    assert "'agent none' was specified" in entry["error"]
    if "post" in where:  # the stages ran; the failing post fails the build, so `failure` runs, not `success`
        assert set(stage_statuses(report).values()) == {"success", "skipped"}
        assert [s["post"] for s in report["stages"] if "post" in s] == ["always", "failure"]


def log_another_version(path: Path, env: dict) -> dict:
    """Another version of the workspace's model (factor 3, with examples it passes), logged to its store."""
    make_project(path, factor=3)
    return vci_json(
        "log",
        "--model",
        "model.py:Doubler",
        "--artifact",
        "factor=factor.txt",
        "--examples",
        "examples.json",
        cwd=path,
        env=env,
    )


@pytest.mark.slow
def test_a_deploy_during_the_approval_wait_is_not_promoted(tmp_path, jenkins_workspace):
    """Another version reaches staging while the build waits for its approval: the promotion of the
    approved digest is refused and production is left alone."""
    workspace, store, env = jenkins_workspace
    other = log_another_version(tmp_path / "other", env)
    deploy = [sys.executable, "-m", "vci", "deploy", other["run_id"], "--env", "staging"]
    meanwhile = f"VCI_CACHE_DIR={shlex.quote(env['VCI_CACHE_DIR'])} {shlex.join(deploy)}"
    out, report = run_pipeline(
        tmp_path,
        workspace,
        store,
        LOCAL_PARAMS,
        approver="release-manager",
        extra_env={"HARNESS_DURING_INPUT": meanwhile},
    )
    assert report["result"] == "FAILURE", out.stdout[-3000:] + out.stderr[-3000:]
    assert stage_statuses(report) == {
        "Package": "success",
        "Deploy staging": "success",
        "Smoke test": "success",
        "Approval": "success",
        "Promote to production": "failure",
    }
    tested = re.search(r"^staging answered \d+ examples as expected \((sha256:\w+)\)$", out.stdout, re.M)[1]
    assert re.search(rf"^staging runs {tested} ", out.stdout, re.M)  # what Deploy staging deployed
    assert report["approvals"][0]["message"] == f"Promote {tested}, tested on staging, to production?"
    staging = vci_json("status", "--env", "staging", cwd=workspace, env=env)
    assert staging["digest"] == other["version"] != tested  # the other deploy happened
    assert f"'--digest' '{tested}'" in out.stdout
    assert "script returned exit code 7" in stage_error(report, "Promote to production")  # vci's conflict
    assert f"'staging' runs {other['version']}, not the approved {tested}: nothing was promoted" in out.stderr
    assert vci_json("status", "--env", "production", cwd=workspace, env=env)["state"] == "not-deployed"
    assert vci_json("history", "--env", "production", cwd=workspace, env=env)["releases"] == []
    assert {"stage": "Promote to production", "post": "always", "status": "success"} in report["stagePosts"]


def test_the_strategy_parameter_offers_every_strategy_and_an_unknown_one_is_refused(tmp_path):
    """STRATEGY's choices are vci promote's strategies (and default); the harness refuses a value that is
    not one of them, as Jenkins refuses a triggered build's illegal choice, before any stage runs."""
    choices = re.search(r"choice\(name: 'STRATEGY', choices: \[([^\]]*)\]", (JENKINS / "Jenkinsfile").read_text())
    assert re.findall(r"'([^']+)'", choices.group(1)) == ["default", *STRATEGIES]
    env = clean_env(HARNESS_PARAMS=json.dumps({"STRATEGY": "rolling"}), HARNESS_CREDENTIALS="{}")
    out = groovy(
        HARNESS / "run_pipeline.groovy", JENKINS / "Jenkinsfile", JENKINS / "vars", tmp_path, tmp_path / "r", env=env
    )
    assert out.returncode != 0 and "Illegal choice for parameter STRATEGY: rolling" in out.stderr
    assert "[Pipeline] stage" not in out.stdout and not (tmp_path / "r").exists()
