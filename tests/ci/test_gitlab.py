"""GitLab CI integration: the job's context in the ledger, dotenv reports as GitLab reads them, log sections."""

import io
import json
import re

import pytest

from vci.build.plan import _source_and_revision
from vci.ci import gitlab
from vci.ledger import ci_context, who

from .conftest import run_vci

SHA = "sha256:" + "a" * 64
JOB = {
    "GITLAB_CI": "true",
    "CI_JOB_URL": "https://gitlab.example.com/ml/models/-/jobs/42",
    "CI_PIPELINE_URL": "https://gitlab.example.com/ml/models/-/pipelines/7",
    "CI_COMMIT_SHA": "c0ffee",
    "CI_COMMIT_REF_NAME": "main",
    "CI_PROJECT_PATH": "ml/models",
    "GITLAB_USER_LOGIN": "release-manager",
    "CI_ENVIRONMENT_NAME": "production",
    "CI_PROJECT_URL": "https://gitlab.example.com/ml/models",
}
# GitLab's own markers (docs: "Custom collapsible sections"): ESC[0K section_start:UNIX:NAME[options] CR ESC[0K header
SECTION = re.compile(r"\x1b\[0Ksection_(start|end):(\d+):([A-Za-z0-9_.-]+)(\[collapsed=true\])?\r\x1b\[0K(.*)")


def parse_dotenv(text: str) -> dict:
    """A dotenv report as GitLab takes it: KEY=VALUE lines, keys of ASCII letters, digits and _, the value
    as it stands (quotes kept), the last of a repeated key winning; anything else is refused."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z0-9_]+", key), f"GitLab refuses the line {line!r}"
        values[key] = value
    return values


def test_the_job_is_recorded_with_who_started_it():
    assert ci_context(JOB) == {
        "system": "gitlab",
        "url": JOB["CI_JOB_URL"],
        "pipeline_url": JOB["CI_PIPELINE_URL"],
        "sha": "c0ffee",
        "actor": "release-manager",  # in a manual job: who started it
        "ref": "main",
        "repository": "ml/models",
        "environment": "production",
    }
    assert who(JOB) == "gitlab:release-manager"
    assert ci_context({**JOB, "GITLAB_CI": "false"}) is None  # gitlab-ci-local's value: no GitLab job
    assert ci_context({k: v for k, v in JOB.items() if k != "GITLAB_CI"}) is None
    assert ci_context({**JOB, "CI_ENVIRONMENT_NAME": ""})["environment"] is None


def test_images_built_in_a_job_name_its_project_and_commit(monkeypatch):
    for name in ("VCI_SOURCE_URL", "VCI_SOURCE_REVISION", "GITHUB_REPOSITORY", "GITHUB_SHA", "GIT_URL", "GIT_COMMIT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in JOB.items():
        monkeypatch.setenv(name, value)
    assert _source_and_revision() == ("https://gitlab.example.com/ml/models", "c0ffee")
    monkeypatch.setenv("GITLAB_CI", "false")
    assert _source_and_revision() == (None, None)


def test_dotenv_entries_keep_to_gitlab_s_rules():
    result = {
        "digest": SHA,
        "release_id": "r20261124-071203-3f9a",
        "endpoint": "http://127.0.0.1:8080",
        "run_id": "multi\nline",  # would end the line
        "image": '"quoted"',  # GitLab keeps quotes as they are
        "version": "",
        "environment": "staging",  # not a key later jobs are given (it would override their own setting)
        "reason": "anything",
    }
    assert gitlab.dotenv_entries(result) == {
        "VCI_DIGEST": SHA,
        "VCI_RELEASE_ID": "r20261124-071203-3f9a",
        "VCI_ENDPOINT": "http://127.0.0.1:8080",
    }
    assert gitlab.dotenv_value(True) == "true" and gitlab.dotenv_value(2) == "2"
    assert gitlab.dotenv_value(None) is None and gitlab.dotenv_value({"a": 1}) is None


def test_each_command_adds_its_result_to_the_report(tmp_path):
    path = tmp_path / "vci.env"
    env = {"VCI_DOTENV": str(path)}
    gitlab.write_dotenv({"run_id": "r1", "version": SHA}, env)
    gitlab.write_dotenv({"run_id": "r2", "image": f"host/ml/x@{SHA}", "digest": SHA}, env)
    assert gitlab.write_dotenv({"environment": "staging"}, env) is None  # nothing to report: nothing written
    values = parse_dotenv(path.read_text())  # the last line of a key wins, as in GitLab
    assert values == {"VCI_RUN_ID": "r2", "VCI_VERSION": SHA, "VCI_IMAGE": f"host/ml/x@{SHA}", "VCI_DIGEST": SHA}
    assert path.stat().st_size < 5 * 1024  # GitLab's limit for a dotenv report
    assert gitlab.write_dotenv({"digest": SHA}, {}) is None  # no VCI_DOTENV: no file


def test_a_section_is_closed_also_when_the_command_fails():
    stream = io.StringIO()
    with pytest.raises(RuntimeError), gitlab.section("vci deploy", stream=stream):
        stream.write("progress\n")
        raise RuntimeError("refused")
    start, inside, end, _ = stream.getvalue().split("\n")
    (kind, _, name, collapsed, header), (end_kind, _, end_name, _, _) = (
        SECTION.fullmatch(start).groups(),
        SECTION.fullmatch(end).groups(),
    )
    assert (kind, end_kind, header, collapsed) == ("start", "end", "vci deploy", None)
    assert name == end_name and name.startswith("vci-deploy-") and inside == "progress"
    assert gitlab.section_start("n", "h", collapsed=True).startswith("\x1b[0Ksection_start:")
    assert "[collapsed=true]\r" in gitlab.section_start("n", "h", collapsed=True)


def sections(stderr: str) -> list[tuple[str, str, str]]:
    """(start or end, name, header) of each marker a command wrote (read as text, the CR became a newline)."""
    marker = SECTION.pattern.replace(r"\r", r"\n")
    return [(m[1], m[3], m[5]) for m in re.finditer(marker, stderr)]


def test_cli_writes_the_report_and_a_section_per_command_in_a_job(project, tmp_path):
    workdir, env = project
    report = tmp_path / "vci.env"
    job = dict(env, **JOB, VCI_DOTENV=str(report))
    logged = run_vci(
        "log",
        "--model",
        "model.py:Doubler",
        "--artifact",
        "factor=factor.txt",
        "--output",
        "json",
        cwd=workdir,
        env=job,
    )
    run = json.loads(logged.stdout)  # stdout stays one JSON object: the markers go to stderr
    [(start, name, header), (end, end_name, _)] = sections(logged.stderr)
    assert (start, end, header, name) == ("start", "end", "vci log", end_name)
    deployed = run_vci("deploy", run["run_id"], "--env", "staging", cwd=workdir, env=job)
    assert [header for kind, _, header in sections(deployed.stderr) if kind == "start"] == ["vci deploy"]
    values = parse_dotenv(report.read_text())
    status = json.loads(run_vci("status", "--env", "staging", "--output", "json", cwd=workdir, env=env).stdout)
    assert values["VCI_RUN_ID"] == run["run_id"] and values["VCI_VERSION"] == run["version"]
    assert values["VCI_DIGEST"] == status["digest"] and values["VCI_RELEASE_ID"] == status["release_id"]
    assert values["VCI_ENDPOINT"].startswith("http://127.0.0.1:")

    failed = run_vci("status", "--env", "nowhere", cwd=workdir, env=job, check=False)
    assert failed.returncode == 3
    assert [kind for kind, _, _ in sections(failed.stderr)] == ["start", "end"]
    after = failed.stderr.rsplit("\x1b[0K", 1)[1]
    assert after.lstrip("\n").startswith("vci: error: unknown environment 'nowhere'")  # after the section, in view


def test_cli_writes_neither_outside_gitlab_ci(project, tmp_path):
    workdir, env = project
    report = tmp_path / "vci.env"
    for local in ({}, {"GITLAB_CI": "false"}):  # gitlab-ci-local's own value: not a GitLab job
        out = run_vci(
            "log",
            "--model",
            "model.py:Doubler",
            "--artifact",
            "factor=factor.txt",
            cwd=workdir,
            env=dict(env, **local, VCI_DOTENV=str(report)),
        )
        assert "section_" not in out.stderr and not report.exists()
