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

``on_approvals_read(run_id)``, when set, runs before an authorized answer is sent: what happens while
the reader waits. ``requests`` records each request as ``(method, path, status)``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOCS = "https://docs.github.com/rest/actions/workflow-runs#get-the-review-history-for-a-workflow-run"
APPROVALS = re.compile(r"/repos/([^/]+)/([^/]+)/actions/runs/(\d+)/approvals")
STATES = ("approved", "rejected")


class GitHubAPI:
    """A thread serving a repository's workflow runs' review histories."""

    def __init__(self, repository: str, tokens: dict[str, set[str]]):
        self.repository = repository.lower()
        self.tokens = tokens
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

    def answer(self, method: str, path: str, headers) -> tuple[int, object]:
        """The status and JSON body the real API gives this request."""
        if not headers.get("User-Agent"):
            return 403, {
                "message": "Request forbidden by administrative rules. Please make sure your request "
                "has a User-Agent header (https://docs.github.com/en/rest/using-the-rest-api)."
            }
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or token.strip() not in self.tokens:
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
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

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _respond(self) -> None:
                status, body = api.answer(self.command, self.path, self.headers)
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
