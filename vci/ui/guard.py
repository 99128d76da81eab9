"""Who may act through the app: the token, the session cookie it buys, CSRF tokens, same-origin, and CSP.

The app is read-only unless started with actions on. Then an action needs the token (``VCI_UI_TOKEN``,
else one drawn at start and printed once, as Jupyter does): sent once to ``/login``, it buys a session
cookie (HttpOnly, SameSite=Strict), or it comes as ``Authorization: Bearer`` on each request (scripts).
A form carries a CSRF token bound to its session (an HMAC of the session id under a key drawn at start);
a request whose ``Origin`` (else ``Referer``) is another origin is refused. Every comparison of secrets
is constant-time. Every response carries a Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..redact import remember

COOKIE = "vci_ui_session"
TOKEN_ENV = "VCI_UI_TOKEN"
MIN_TOKEN = 16  # characters: a shorter VCI_UI_TOKEN is refused at start
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class Refused(Exception):
    """A request the guard turns away: ``status`` (401, 403) and a message for the page."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.message, self.status = message, status


def app_token(environ=None) -> tuple[str, bool]:
    """``(token, generated)``: ``VCI_UI_TOKEN`` when set, else a new random one (to be printed once)."""
    env = os.environ if environ is None else environ
    given = env.get(TOKEN_ENV)
    if given is not None and len(given) < MIN_TOKEN:
        raise ConfigError(
            f"{TOKEN_ENV} is {len(given)} characters long: a token needs at least {MIN_TOKEN}",
            hint=f"unset {TOKEN_ENV} and vci ui draws one, or set a longer one",
        )
    token = given or secrets.token_urlsafe(24)
    remember(token)  # never in a log line or an error message
    return token, not given


@dataclass
class Guard:
    """The token and sessions of one running app (kept in memory: a restart logs everyone out)."""

    token: str
    actions: bool
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    sessions: set[str] = field(default_factory=set)
    hosts: frozenset[str] | None = None  # the Host headers answered (None: any)

    def check_host(self, host: str) -> None:
        """Refuse a request for another host name: a DNS-rebinding page reaching a loopback app would
        send its own name."""
        if self.hosts is not None and host.lower() not in self.hosts:
            raise Refused(f"refused: this app answers to {', '.join(sorted(self.hosts))}, not {host}", 403)

    def login(self, offered: str | None) -> str:
        """A new session id for the right token; Refused (401) for any other."""
        if not self.actions:
            raise Refused("this app is read-only: start it with `vci ui --actions` to act", 403)
        if not offered or not hmac.compare_digest(offered.encode(), self.token.encode()):
            raise Refused("wrong token: use the one `vci ui` printed (or VCI_UI_TOKEN)", 401)
        session = secrets.token_urlsafe(24)
        self.sessions.add(session)
        return session

    def csrf(self, session: str | None) -> str | None:
        """The CSRF token that forms of ``session`` carry (None without a session)."""
        if not session or session not in self.sessions:
            return None
        return hmac.new(self.key, session.encode(), hashlib.sha256).hexdigest()

    def signed_in(self, session: str | None) -> bool:
        return bool(session) and session in self.sessions

    def check_action(self, *, session: str | None, bearer: str | None, csrf: str | None, origin: str | None,
                     referer: str | None, host_url: str) -> None:  # fmt: skip
        """Refuse an action unless actions are on, it comes from this origin, and it is authenticated
        (a session with its CSRF token, or the token itself as a bearer)."""
        if not self.actions:
            raise Refused("this app is read-only: start it with `vci ui --actions` to act", 403)
        if not same_origin(origin, referer, host_url, bearer_used=bearer is not None):
            raise Refused("refused: the request comes from another origin", 403)
        if bearer is not None:
            if not hmac.compare_digest(bearer.encode(), self.token.encode()):
                raise Refused("wrong token", 401)
            return
        if not self.signed_in(session):
            raise Refused("sign in with the token first (the URL `vci ui` printed)", 401)
        expected = self.csrf(session) or ""
        if not csrf or not hmac.compare_digest(csrf.encode(), expected.encode()):
            raise Refused("refused: the form's CSRF token is missing or wrong (reload the page)", 403)


def loopback_hosts(host: str, port: int) -> frozenset[str] | None:
    """The Host headers an app bound to ``host:port`` answers: on loopback, its loopback names with that
    port; bound elsewhere, any (the names it is reached by are not known here)."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        return None
    return frozenset(f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]"))


def same_origin(origin: str | None, referer: str | None, host_url: str, *, bearer_used: bool = False) -> bool:
    """Whether a request comes from the app's own origin: by ``Origin``, else ``Referer``; a request with
    neither is a browser's only when it carries a cookie, so it passes only with the bearer token."""
    own = _origin_of(host_url)
    if origin:
        return origin != "null" and _origin_of(origin) == own
    if referer:
        return _origin_of(referer) == own
    return bearer_used


def _origin_of(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.netloc or "").lower()
