"""The GitHub REST API calls vci makes: opening a pull request (a GitOps change for review).

``GITHUB_API_URL`` (set by the Actions runner; default https://api.github.com) and a token from
``GITHUB_TOKEN`` (or ``VCI_GITHUB_TOKEN``), sent as a bearer token and never printed. GitHub's answers
become one-line errors: 401 bad credentials and 403 (a token without ``pull-requests: write``) are
AuthError, 422 (no commits between the branches, a pull request for that branch exists already) a
ConflictError with GitHub's own words.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from ..errors import AuthError, ConflictError, RemoteError, UsageError
from ..redact import mask_url, remember

DEFAULT_API = "https://api.github.com"
TIMEOUT = 30.0


def api_token(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    token = env.get("VCI_GITHUB_TOKEN") or env.get("GITHUB_TOKEN")
    if not token:
        raise AuthError(
            "opening a pull request needs a GitHub token",
            hint="set GITHUB_TOKEN (in Actions: permissions: pull-requests: write, contents: write)",
        )
    remember(token)
    return token


def open_pull_request(repository: str, head: str, base: str, title: str, body: str, env=None) -> dict:
    """``POST /repos/{repository}/pulls``: ``{number, url}`` of the pull request opened from ``head``."""
    import urllib.error
    import urllib.request

    env = os.environ if env is None else env
    api = (env.get("GITHUB_API_URL") or DEFAULT_API).rstrip("/")
    request = urllib.request.Request(
        f"{api}/repos/{repository}/pulls",
        data=json.dumps({"title": title, "head": head, "base": base, "body": body}).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {api_token(env)}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "vci",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:
            found = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise _refusal(exc, repository) from None
    except (OSError, ValueError) as exc:
        raise RemoteError(f"the GitHub API at {mask_url(api)} could not be reached: {exc}") from None
    return {"number": found["number"], "url": found["html_url"]}


def _refusal(exc, repository: str) -> Exception:
    try:
        answer = json.loads(exc.read())
    except (OSError, ValueError):
        answer = {}
    said = answer.get("message", exc.reason)
    details = "; ".join(str(e.get("message", e)) for e in answer.get("errors", []) if isinstance(e, dict))
    words = f"GitHub refused the pull request on {repository} ({exc.code} {said}{': ' + details if details else ''})"
    if exc.code in (401, 403):
        return AuthError(words, hint="the token needs pull-requests: write on the repository")
    if exc.code == 404:
        return UsageError(words, hint="gitops.github names the repository as owner/name")
    if exc.code == 422:
        return ConflictError(words)
    return RemoteError(words)
