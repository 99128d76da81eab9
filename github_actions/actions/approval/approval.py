"""Who approved this workflow run's deployment to a GitHub environment, from the run's review history.

Run as a step of the job that waited for the environment's required reviewers: it reads
``GET {GITHUB_API_URL}/repos/{GITHUB_REPOSITORY}/actions/runs/{GITHUB_RUN_ID}/approvals`` with the
job's token, picks the last ``approved`` review of the environment and writes ``approver=LOGIN`` to
``$GITHUB_OUTPUT``. It never guesses: when the history cannot be read, or holds no approval of the
environment, the step fails with an ``::error::`` naming what to fix, and nothing after it runs.
Standard library only, so any Python 3 on the runner runs it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request

API_VERSION = "2022-11-28"
TIMEOUT_SECONDS = 60
# A GitHub login (letters, digits, single hyphens, at most 39), or an app's "name[bot]".
LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?")


class ApprovalError(Exception):
    """Why no approver can be named; the message says what to fix."""


def approvals_url(env) -> str:
    """The run's review history endpoint, from the variables the runner sets."""
    missing = [name for name in ("GITHUB_API_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID") if not env.get(name)]
    if missing:
        raise ApprovalError(f"{', '.join(missing)} not set: run this action as a step of a GitHub Actions job")
    api, repository, run_id = env["GITHUB_API_URL"].rstrip("/"), env["GITHUB_REPOSITORY"], env["GITHUB_RUN_ID"]
    return f"{api}/repos/{repository}/actions/runs/{run_id}/approvals"


HTTP_FIXES = {
    401: "the token was refused: pass the job's token (the action's token input, default github.token)",
    403: "the token may not read the run's approvals: give the job `permissions: actions: read`",
    404: "the run or repository was not found with this token: give the job `permissions: actions: read`"
    " and check GITHUB_REPOSITORY and GITHUB_RUN_ID",
}


def read_approvals(url: str, token: str) -> list:
    """The run's review records (a JSON list), or ApprovalError naming the status and the fix."""
    if not token:
        raise ApprovalError("no token: pass the job's token (the action's token input, default github.token)")
    request = urllib.request.Request(
        url,
        headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "vci-approval",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            records = json.load(response)
    except urllib.error.HTTPError as error:
        fix = HTTP_FIXES.get(error.code, "retry the job; if it persists, check githubstatus.com")
        raise ApprovalError(f"cannot read the run's approvals ({url}: HTTP {error.code}): {fix}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise ApprovalError(f"cannot read the run's approvals ({url}: {reason}): check GITHUB_API_URL") from None
    if not isinstance(records, list):
        raise ApprovalError(f"unexpected answer from {url}: a list of reviews was expected")
    return records


def approver(records: list, environment: str, run_id: str) -> str:
    """The login of the last ``approved`` review that covers ``environment``, else ApprovalError."""
    approvals = [
        record
        for record in records
        if isinstance(record, dict)
        and record.get("state") == "approved"
        and environment in {e.get("name") for e in record.get("environments") or [] if isinstance(e, dict)}
    ]
    if not approvals:
        raise ApprovalError(
            f"run {run_id} has no approval of the environment {environment!r}: give it required reviewers "
            f"(Settings > Environments > {environment} > Required reviewers) so that the job waits for one"
        )
    login = (approvals[-1].get("user") or {}).get("login") or ""
    if not LOGIN.fullmatch(login):
        raise ApprovalError(f"the approval of {environment!r} names no valid GitHub login ({login[:60]!r})")
    return login


def escape(message: str) -> str:
    """A workflow command's message, with ``%``, CR and LF escaped."""
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def main(env=os.environ) -> int:
    environment = env.get("IN_ENVIRONMENT") or "production"
    try:
        url = approvals_url(env)
        login = approver(read_approvals(url, env.get("IN_TOKEN", "")), environment, env["GITHUB_RUN_ID"])
    except ApprovalError as error:
        print(f"::error title=vci approval::{escape(str(error))}")
        return 1
    if env.get("GITHUB_OUTPUT"):
        with open(env["GITHUB_OUTPUT"], "a", encoding="utf-8") as output:
            output.write(f"approver={login}\n")
    print(f"{environment} approved by {login} (run {env['GITHUB_RUN_ID']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
