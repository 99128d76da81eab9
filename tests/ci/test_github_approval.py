"""The approval action's script against the GitHub API fake: it names the approver or fails, never guesses."""

import subprocess
import sys

import pytest

from fakes.github_api import GitHubAPI

from .conftest import ROOT, clean_env

SCRIPT = ROOT / "github_actions" / "actions" / "approval" / "approval.py"
TOKEN, READ_ONLY_CONTENTS = "ghs_job-token-1234", "ghs_contents-only-5678"
RUN_ID = 7001


@pytest.fixture()
def api():
    with GitHubAPI(
        "acme/models", tokens={TOKEN: {"contents:read", "actions:read"}, READ_ONLY_CONTENTS: {"contents:read"}}
    ) as server:
        yield server


def run_approval(tmp_path, api_url, token=TOKEN, run_id=RUN_ID, environment="production", **extra):
    """The script as the composite action runs it: the runner's variables, the inputs as IN_*."""
    output = tmp_path / "github_output"
    output.write_text("")
    env = clean_env(
        GITHUB_API_URL=api_url,
        GITHUB_REPOSITORY="acme/models",
        GITHUB_RUN_ID=str(run_id),
        GITHUB_OUTPUT=str(output),
        GITHUB_ACTOR="someone-else",
        IN_TOKEN=token,
        IN_ENVIRONMENT=environment,
        **extra,
    )
    out = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=90)
    return out, output.read_text()


def test_names_the_last_reviewer_who_approved_the_environment(tmp_path, api):
    api.approve(RUN_ID, "staging", "staging-reviewer")
    api.approve(RUN_ID, "production", "first-approver")
    api.approve(RUN_ID, "production", "release-manager")
    out, outputs = run_approval(tmp_path, api.url)
    assert out.returncode == 0, out.stdout + out.stderr
    assert outputs == "approver=release-manager\n"
    assert api.requests == [("GET", f"/repos/acme/models/actions/runs/{RUN_ID}/approvals", 200)]
    assert TOKEN not in out.stdout + out.stderr


def test_no_approval_of_the_environment_fails_naming_required_reviewers(tmp_path, api):
    api.add_run(RUN_ID)
    api.approve(RUN_ID, "staging", "staging-reviewer")  # another environment's review does not count
    out, outputs = run_approval(tmp_path, api.url)
    assert out.returncode == 1 and outputs == ""
    assert out.stdout.startswith("::error title=vci approval::")
    assert f"run {RUN_ID} has no approval of the environment 'production'" in out.stdout
    assert "Required reviewers" in out.stdout and "someone-else" not in out.stdout


def test_a_rejected_review_is_no_approval(tmp_path, api):
    api.approve(RUN_ID, "production", "release-manager", state="rejected")
    out, outputs = run_approval(tmp_path, api.url)
    assert out.returncode == 1 and outputs == "" and "no approval" in out.stdout


def test_a_token_without_actions_read_fails_naming_the_permission(tmp_path, api):
    api.approve(RUN_ID, "production", "release-manager")
    out, outputs = run_approval(tmp_path, api.url, token=READ_ONLY_CONTENTS)
    assert out.returncode == 1 and outputs == ""
    assert "HTTP 403" in out.stdout and "permissions: actions: read" in out.stdout
    assert READ_ONLY_CONTENTS not in out.stdout + out.stderr


@pytest.mark.parametrize("token, status", [("ghs_revoked", "HTTP 401"), ("", "no token")])
def test_a_bad_or_missing_token_fails(tmp_path, api, token, status):
    api.approve(RUN_ID, "production", "release-manager")
    out, outputs = run_approval(tmp_path, api.url, token=token)
    assert out.returncode == 1 and outputs == "" and status in out.stdout
    assert "token input" in out.stdout


def test_an_unknown_run_and_an_unreachable_api_fail(tmp_path, api):
    out, _ = run_approval(tmp_path, api.url, run_id=999)
    assert out.returncode == 1 and "HTTP 404" in out.stdout and "GITHUB_RUN_ID" in out.stdout
    api.stop()
    out, outputs = run_approval(tmp_path, api.url)
    assert out.returncode == 1 and outputs == "" and "check GITHUB_API_URL" in out.stdout


def test_outside_a_job_it_says_so(tmp_path):
    out, _ = run_approval(tmp_path, "")
    assert out.returncode == 1 and "GITHUB_API_URL not set" in out.stdout
