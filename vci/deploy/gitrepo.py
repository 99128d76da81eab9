"""A GitOps repository through the ``git`` binary: a fresh clone of one branch, files written, one commit
pushed (to the branch, or to a branch of its own for a pull request), retried when someone pushed first.

Every call is an argument list (never a shell); what git prints is masked (``redact``) before it reaches
an error. Credentials in an HTTPS URL (``https://x-access-token:TOKEN@host/...``) never reach git's
command line (a process list shows it) nor a clone's config: git gets the URL without them and the
credentials as an ``Authorization`` header through ``GIT_CONFIG_*`` variables of its own environment.
The author is vci's ``who()`` (the CI actor or user).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import ConflictError, DeployError, UsageError
from ..redact import mask_url, redact, remember

PUSH_ATTEMPTS = 3  # a push refused because the branch moved is redone on a fresh clone this often
GIT_TIMEOUT = 120.0


@dataclass(frozen=True)
class Commit:
    """What was pushed: ``sha`` on ``branch`` of ``repo`` (``pushed_to``: the branch written, which is
    ``branch`` itself unless the change goes through a pull request)."""

    repo: str
    branch: str
    sha: str
    pushed_to: str
    changed: bool = True

    def to_json(self) -> dict:
        return {"repo": mask_url(self.repo), "branch": self.branch, "sha": self.sha, "pushed_to": self.pushed_to}


def git(args: list[str], cwd: Path | None = None, env: dict | None = None, check: bool = True) -> str:
    """Run ``git ARGS``; DeployError with git's own (masked) words when it fails."""
    if shutil.which("git") is None:
        raise DeployError("a GitOps environment needs git, which is not installed", hint="install git")
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})},
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise DeployError(f"git {args[0]} did not finish in {GIT_TIMEOUT:g} s") from None
    if check and done.returncode != 0:
        said = redact((done.stderr or done.stdout).strip().splitlines()[-1:][0] if (done.stderr or done.stdout) else "")
        raise DeployError(f"git {args[0]} failed: {said}")
    return done.stdout


def clone(repo: str, branch: str, into: Path) -> bool:
    """Clone ``branch`` of ``repo`` into ``into``; False (an empty checkout on that branch) when the branch
    does not exist yet."""
    source, secret = _fetchable(repo), credential_env(repo)
    if git(["ls-remote", "--heads", source, f"refs/heads/{branch}"], env=secret).strip():
        git(["clone", "--quiet", "--single-branch", "--branch", branch, "--depth", "1", source, str(into)], env=secret)
        return True
    into.mkdir(parents=True)
    git(["init", "--quiet", "-b", branch], cwd=into)
    git(["remote", "add", "origin", source], cwd=into)
    return False


def read_file(repo: str, branch: str, path: str) -> str | None:
    """The text of ``path`` on ``branch`` now (None when the branch or file does not exist)."""
    with tempfile.TemporaryDirectory(prefix="vci-gitops-") as tmp:
        if not clone(repo, branch, Path(tmp) / "repo"):
            return None
        file = Path(tmp) / "repo" / path
        return file.read_text() if file.is_file() else None


def commit_and_push(
    repo: str, branch: str, change: Callable[[Path], None], message: str, author: str, head: str | None = None
) -> Commit:
    """Clone, apply ``change(checkout)``, commit with ``message`` and push to ``head`` (default ``branch``).

    ``changed`` is False (nothing committed or pushed) when the change leaves the tree as it was. A push
    refused because the branch moved meanwhile is redone on a fresh clone, ``PUSH_ATTEMPTS`` times."""
    identity = {"GIT_AUTHOR_NAME": author, "GIT_COMMITTER_NAME": author}
    identity.update(GIT_AUTHOR_EMAIL="vci@localhost", GIT_COMMITTER_EMAIL="vci@localhost")
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        with tempfile.TemporaryDirectory(prefix="vci-gitops-") as tmp:
            checkout = Path(tmp) / "repo"
            existed = clone(repo, branch, checkout)
            change(checkout)
            git(["add", "--all", "."], cwd=checkout)
            if existed and not git(["status", "--porcelain"], cwd=checkout).strip():
                sha = git(["rev-parse", "HEAD"], cwd=checkout).strip()
                return Commit(repo, branch, sha, branch, changed=False)
            git(["commit", "--quiet", "-m", message], cwd=checkout, env=identity)
            sha = git(["rev-parse", "HEAD"], cwd=checkout).strip()
            target = head or branch
            pushed = subprocess.run(
                ["git", "push", "--quiet", "origin", f"HEAD:refs/heads/{target}"],
                cwd=checkout,
                env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **credential_env(repo)},
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT,
            )
            if pushed.returncode == 0:
                return Commit(repo, branch, sha, target)
            if not _moved(pushed.stderr) or attempt == PUSH_ATTEMPTS:
                said = redact(pushed.stderr.strip().splitlines()[-1] if pushed.stderr.strip() else "no output")
                error = ConflictError if _moved(pushed.stderr) else DeployError
                raise error(f"git push to {mask_url(repo)} {target} failed: {said}")
    raise AssertionError("unreachable")  # pragma: no cover


def _moved(stderr: str) -> bool:
    return any(word in stderr for word in ("non-fast-forward", "fetch first", "rejected"))


def credential_env(repo: str) -> dict[str, str]:
    """The user and token of an HTTP(S) URL as git configuration in the environment (none without them)."""
    parts = urlsplit(repo)
    if parts.scheme not in ("http", "https") or not (parts.username or parts.password):
        return {}
    user, token = unquote(parts.username or ""), unquote(parts.password or "")
    remember(token, user if not token else None)
    basic = base64.b64encode(f"{user}:{token}".encode()).decode()
    remember(basic)
    header = f"Authorization: Basic {basic}"
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader", "GIT_CONFIG_VALUE_0": header}


def _fetchable(repo: str) -> str:
    """A local repository as a ``file://`` URL (so that ``--depth`` applies); an HTTP(S) URL without its
    credentials (``credential_env`` carries them); anything else unchanged."""
    parts = urlsplit(repo)
    if parts.scheme in ("http", "https"):
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if "://" in repo or repo.startswith("git@") or ":" in repo.split("/", 1)[0]:
        return repo
    path = Path(repo).expanduser()
    if not path.exists():
        raise UsageError(f"the GitOps repository {repo} does not exist", hint="gitops.repo: a URL or a path")
    return path.resolve().as_uri()
