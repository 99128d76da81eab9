"""Optional bearer-token auth of the model server's prediction routes (REST, V2 and gRPC metadata).

Tokens come from a file (``VCI_AUTH_TOKEN_FILE``: one token a line, as a mounted Secret holds them),
reread whenever the file changes (its inode, size or mtime: a Secret's update swaps a symlink), so a
rotation needs no restart; and/or from ``VCI_AUTH_TOKEN`` (read once at start and removed from the
process environment, so the model's code and its children never see it). A request is let through when
its ``Authorization: Bearer TOKEN`` (or ``X-Vci-Authorization``: through a proxy) equals one of them,
compared in constant time against every token (hmac.compare_digest, no early exit). Refusals are 401
with ``WWW-Authenticate: Bearer`` and a message that names the header, never the token. ``/healthz``,
``/readyz``, ``/metrics`` and the health and readiness routes of V2 and gRPC stay open unless
``VCI_AUTH_ALL_ROUTES`` is true; a token never reaches a log line, a metric label or an error.

Failure policy: a token file that cannot be read at start stops the server (it would refuse every
request); one that becomes unreadable later keeps the last tokens read (logged once); a file with no
token refuses every request (closed, not open).
"""

from __future__ import annotations

import hmac
import os

from ..errors import ServeError
from . import logs
from .service import Reply, error_reply

OPEN_ROUTES = frozenset(
    {"/healthz", "/readyz", "/metrics", "/vci.Model/Health"}
    | {"/v2/health/live", "/v2/health/ready", "/v2/models/{name}/ready"}
    | {f"/inference.GRPCInferenceService/{m}" for m in ("ServerLive", "ServerReady", "ModelReady")}
    | {"/docs", "/openapi.json"}  # the page and its document (which declares the bearer scheme); its assets too
)
CHALLENGE = 'WWW-Authenticate: Bearer realm="vci"'
# where a request's token may be: X-Vci-Authorization first (vci.client sends it there through the Kubernetes
# API server's service proxy, whose own credentials take Authorization), then Authorization
TOKEN_HEADERS = ("x-vci-authorization", "authorization")


class Tokens:
    """The accepted tokens and the routes they guard; :meth:`refusal` is called for every request."""

    def __init__(self, token_file: str | None = None, token: str | None = None, *, all_routes: bool = False):
        self.token_file, self.all_routes = token_file, all_routes
        self.fixed = [token.strip().encode()] if token and token.strip() else []
        self.from_file: list[bytes] = []
        self.seen: tuple | None = None  # (inode, size, mtime_ns) of the file read last
        self.unreadable = False
        if token_file is not None:
            try:
                self._reread(os.stat(token_file))
            except OSError as exc:
                raise ServeError(
                    f"cannot read the auth token file {token_file}: {exc.strerror or exc}",
                    hint="mount the Secret there, or unset VCI_AUTH_TOKEN_FILE / --auth-token-file",
                ) from exc

    @classmethod
    def from_environment(cls, token_file: str | None = None) -> Tokens | None:
        """The server's tokens as configured (None: auth off); takes VCI_AUTH_TOKEN out of os.environ."""
        token = os.environ.pop("VCI_AUTH_TOKEN", None)
        token_file = token_file or os.environ.get("VCI_AUTH_TOKEN_FILE") or None
        if token is None and token_file is None:
            return None
        all_routes = os.environ.get("VCI_AUTH_ALL_ROUTES", "").strip().lower() in ("1", "true", "yes")
        tokens = cls(token_file, token, all_routes=all_routes)
        logs.event("auth", token_file=token_file, from_environment=bool(tokens.fixed), all_routes=all_routes)
        return tokens

    def guards(self, route: str) -> bool:
        return self.all_routes or (route not in OPEN_ROUTES and not route.startswith("/docs/"))

    def current(self) -> list[bytes]:
        """Every accepted token, the file reread first if it changed since it was read last."""
        if self.token_file is not None:
            try:
                stat = os.stat(self.token_file)
                if (stat.st_ino, stat.st_size, stat.st_mtime_ns) != self.seen:
                    self._reread(stat)
            except OSError as exc:
                if not self.unreadable:
                    logs.event("auth_tokens_unreadable", "warning", token_file=self.token_file, error=exc.strerror)
                self.unreadable = True
        return self.fixed + self.from_file

    def _reread(self, stat: os.stat_result) -> None:
        with open(self.token_file, "rb") as f:  # type: ignore[arg-type]  # only called with a file
            lines = f.read().splitlines()
        self.from_file = [line.strip() for line in lines if line.strip()]
        self.seen, self.unreadable = (stat.st_ino, stat.st_size, stat.st_mtime_ns), False
        logs.event("auth_tokens_read", token_file=self.token_file, tokens=len(self.from_file))

    @staticmethod
    def presented(headers) -> str | None:
        """The token header a request carries (a mapping with lower-case names, or gRPC metadata as a dict)."""
        return next((headers[name] for name in TOKEN_HEADERS if headers.get(name)), None)

    def allows(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries an accepted bearer token (constant time)."""
        scheme, _, presented = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return False
        given = presented.strip().encode("utf-8", "replace")
        matched = False
        for token in self.current():
            matched |= hmac.compare_digest(given, token)
        return matched

    def refusal(self, route: str, authorization: str | None, request_id: str) -> Reply | None:
        """The 401 for a request to a guarded route without an accepted token; None to let it through."""
        if not self.guards(route) or self.allows(authorization):
            return None
        if authorization:
            message, challenge = "the bearer token is not accepted", f'{CHALLENGE}, error="invalid_token"'
        else:
            message, challenge = "this route needs a bearer token: send Authorization: Bearer TOKEN", CHALLENGE
        reply = error_reply(401, message, request_id)
        reply.headers = challenge + "\r\n"
        return reply
