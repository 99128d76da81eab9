"""A GitHub REST API fake for tests: a workflow run's deployment review history, as api.github.com serves it.

Only ``GET /repos/{owner}/{repo}/actions/runs/{run_id}/approvals`` (the reviews of the environments a run
waited for) is served, on 127.0.0.1 with a free port, enforcing what the real endpoint enforces:

- a ``User-Agent`` header, else 403 (the API refuses requests without one);
- a known token in ``Authorization: Bearer TOKEN`` (or ``token TOKEN``), else 401 ``Bad credentials``;
- a token allowed to read the repository's Actions, else 403 ``Resource not accessible by integration``
  (what a job's GITHUB_TOKEN without ``permissions: actions: read`` gets);
- a known repository (owner and name case-insensitive) and a run of it, else 404 ``Not Found``.

The answer is the API's JSON: a list of ``{"environments": [{"id", "name", ...}], "state", "user":
{"login", "id", "type", ...}, "comment"}``, oldest first; a run nobody reviewed answers ``[]``::

    with GitHubAPI(repository="acme/models", tokens={"ghs_x": {"actions:read"}}) as api:
        api.add_run(7)
        api.approve(7, "production", "release-manager")
        # the job sees GITHUB_API_URL=api.url

``POST /repos/{owner}/{repo}/pulls`` opens a pull request when the fake is given the repository's git
directory (``git_dir``), checking what the real endpoint checks: a token with ``pull_requests:write``
(else 403), ``title``, ``head`` and ``base`` given (else 422 ``Validation Failed`` with a ``missing_field``
error), both branches in the git repository and at least one commit on ``head`` that ``base`` lacks
(else 422, "No commits between base and head"), no open pull request from ``head`` already (else 422,
"A pull request already exists for owner:head."). It answers 201 with the pull request's JSON
(``number``, ``html_url``, ``state``, ``head.ref``/``head.sha``, ``base.ref``) and keeps it in ``pulls``.

``on_approvals_read(run_id)``, when set, runs before an authorized answer is sent: what happens while
the reader waits. ``requests`` records each request as ``(method, path, status)``.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOCS = "https://docs.github.com/rest/actions/workflow-runs#get-the-review-history-for-a-workflow-run"
APPROVALS = re.compile(r"/repos/([^/]+)/([^/]+)/actions/runs/(\d+)/approvals")
STATES = ("approved", "rejected")
PULLS = re.compile(r"/repos/([^/]+)/([^/]+)/pulls")
PULLS_DOCS = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"


class GitHubAPI:
    """A thread serving a repository's workflow runs' review histories."""

    def __init__(self, repository: str, tokens: dict[str, set[str]], git_dir: str | None = None):
        self.repository = repository.lower()
        self.tokens = tokens
        self.git_dir = git_dir
        self.pulls: list[dict] = []
        self.runs: dict[int, list[dict]] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.on_approvals_read: Callable[[int], None] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """What the runner puts in GITHUB_API_URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_run(self, run_id: int) -> None:
        self.runs.setdefault(int(run_id), [])

    def approve(self, run_id: int, environment: str, login: str, state: str = "approved") -> None:
        """Record a review of ``environment`` in run ``run_id`` by ``login`` (approved or rejected)."""
        assert state in STATES, state
        self.add_run(run_id)
        number = len(self.runs[int(run_id)]) + 1
        self.runs[int(run_id)].append(
            {
                "environments": [
                    {
                        "id": 1000 + number,
                        "node_id": f"EN_{number}",
                        "name": environment,
                        "url": f"{self.url}/repos/{self.repository}/environments/{environment}",
                        "html_url": f"https://github.com/{self.repository}/deployments/{environment}",
                        "created_at": "2026-01-01T00:00:00Z",
                        "updated_at": "2026-01-01T00:00:00Z",
                    }
                ],
                "state": state,
                "user": {"login": login, "id": 5000 + number, "type": "User", "site_admin": False},
                "comment": "",
            }
        )

    def start(self) -> GitHubAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> GitHubAPI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def answer(self, method: str, path: str, headers, body: bytes = b"") -> tuple[int, object]:
        """The status and JSON body the real API gives this request."""
        if not headers.get("User-Agent"):
            return 403, {
                "message": "Request forbidden by administrative rules. Please make sure your request "
                "has a User-Agent header (https://docs.github.com/en/rest/using-the-rest-api)."
            }
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or token.strip() not in self.tokens:
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        pulls = PULLS.fullmatch(path.split("?", 1)[0])
        if method == "POST" and pulls and self.git_dir is not None:
            return self.open_pull(f"{pulls[1]}/{pulls[2]}".lower(), token.strip(), body)
        match = APPROVALS.fullmatch(path.split("?", 1)[0])
        if method != "GET" or not match:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        repository, run_id = f"{match[1]}/{match[2]}".lower(), int(match[3])
        if repository != self.repository:
            return 404, {"message": "Not Found", "documentation_url": DOCS}
        if "actions:read" not in self.tokens[token.strip()]:
            return 403, {"message": "Resource not accessible by integration", "documentation_url": DOCS}
        if run_id not in self.runs:
            return 404, {"message": "Not Found", "documentation_url": DOCS}
        if self.on_approvals_read is not None:
            self.on_approvals_read(run_id)
        return 200, self.runs[run_id]

    def open_pull(self, repository: str, token: str, body: bytes) -> tuple[int, object]:
        """``POST /repos/{owner}/{repo}/pulls`` against the git repository, as GitHub validates it."""
        if repository != self.repository:
            return 404, {"message": "Not Found", "documentation_url": PULLS_DOCS}
        if "pull_requests:write" not in self.tokens[token]:
            return 403, {"message": "Resource not accessible by integration", "documentation_url": PULLS_DOCS}
        try:
            asked = json.loads(body or b"{}")
        except ValueError:
            return 400, {"message": "Problems parsing JSON", "documentation_url": PULLS_DOCS}
        missing = [key for key in ("title", "head", "base") if not asked.get(key)]
        if missing:
            errors = [{"resource": "PullRequest", "code": "missing_field", "field": key} for key in missing]
            return 422, {"message": "Validation Failed", "errors": errors, "documentation_url": PULLS_DOCS}
        head, base = asked["head"].split(":")[-1], asked["base"]
        shas = {ref: self._sha(ref) for ref in (head, base)}
        for ref, sha in shas.items():
            if sha is None:
                field = "head" if ref == head else "base"
                errors = [{"resource": "PullRequest", "field": field, "code": "invalid"}]
                return 422, {"message": "Validation Failed", "errors": errors, "documentation_url": PULLS_DOCS}
        ahead = self._git("rev-list", "--count", f"{base}..{head}")
        if ahead is None or int(ahead) == 0:
            said = f"No commits between {base} and {head}"
            errors = [{"resource": "PullRequest", "code": "custom", "message": said}]
            return 422, {"message": "Validation Failed", "errors": errors, "documentation_url": PULLS_DOCS}
        if any(p["head"]["ref"] == head and p["state"] == "open" for p in self.pulls):
            said = f"A pull request already exists for {self.repository.split('/')[0]}:{head}."
            errors = [{"resource": "PullRequest", "code": "custom", "message": said}]
            return 422, {"message": "Validation Failed", "errors": errors, "documentation_url": PULLS_DOCS}
        number = len(self.pulls) + 1
        pull = {
            "number": number,
            "html_url": f"https://github.com/{self.repository}/pull/{number}",
            "state": "open",
            "title": asked["title"],
            "body": asked.get("body"),
            "head": {"ref": head, "sha": shas[head]},
            "base": {"ref": base, "sha": shas[base]},
        }
        self.pulls.append(pull)
        return 201, pull

    def _sha(self, branch: str) -> str | None:
        return self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")

    def _git(self, *args: str) -> str | None:
        done = subprocess.run(["git", "-C", str(self.git_dir), *args], capture_output=True, text=True, timeout=30)
        return done.stdout.strip() if done.returncode == 0 else None

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _respond(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, body = api.answer(self.command, self.path, self.headers, self.rfile.read(length))
                api.requests.append((self.command, self.path, status))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _respond

            def log_message(self, *args) -> None:
                pass

        return Handler
