"""Registry credentials and authentication: basic auth, bearer tokens per scope, and secrets kept out of logs.

Credentials come from arguments, then ``VCI_REGISTRY_USER``/``VCI_REGISTRY_PASSWORD``, then the
``auths`` of Docker's ``config.json`` (``$DOCKER_CONFIG`` or ``~/.docker``). Credential helpers are
not run. A registry's ``WWW-Authenticate`` challenge decides the scheme; bearer tokens are fetched
from its realm with the basic credentials and cached per set of scopes until they expire.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import AuthError, RegistryError
from ..redact import mask_url, remember

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __post_init__(self):
        remember(self.password)  # kept out of every message and log line from now on

    def __repr__(self) -> str:  # never print the password
        return f"Credentials(username={self.username!r}, password='***')"

    def basic_header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def resolve_credentials(
    registry: str, username: str | None = None, password: str | None = None, environ: dict | None = None
) -> Credentials | None:
    """Credentials for ``registry`` from arguments, then VCI_REGISTRY_* variables, then Docker config."""
    env = os.environ if environ is None else environ
    if username is not None or password is not None:
        return Credentials(username or "", password or "")
    if env.get("VCI_REGISTRY_USER") or env.get("VCI_REGISTRY_PASSWORD"):
        return Credentials(env.get("VCI_REGISTRY_USER", ""), env.get("VCI_REGISTRY_PASSWORD", ""))
    return _docker_config_credentials(registry, env)


def _docker_config_credentials(registry: str, env) -> Credentials | None:
    config_dir = Path(env.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        auths = json.loads((config_dir / "config.json").read_text()).get("auths", {})
    except (OSError, ValueError):
        return None
    keys = [
        registry,
        f"https://{registry}",
        f"http://{registry}",
        f"https://{registry}/v1/",
        f"https://{registry}/v2/",
    ]
    if registry in ("registry-1.docker.io", "docker.io", "index.docker.io"):
        keys = list(_HUB_KEYS) + keys
    for key in keys:
        entry = auths.get(key)
        if not entry:
            continue
        if entry.get("auth"):
            user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
            return Credentials(user, secret)
        if entry.get("username"):
            return Credentials(entry["username"], entry.get("password", ""))
    return None


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``('bearer', {'realm': ..., 'service': ..., 'scope': ...})`` from a WWW-Authenticate header."""
    scheme, _, rest = (header or "").strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


class Authenticator:
    """Adds the right Authorization header for a set of scopes; learns the scheme from 401 challenges."""

    def __init__(self, registry: str, credentials: Credentials | None, session, verify, timeout: float):
        self.registry = registry
        self.credentials = credentials
        self._session = session
        self._verify = verify
        self._timeout = timeout
        self._challenge: tuple[str, dict] | None = None
        self._tokens: dict[tuple, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.token_requests = 0

    def learn(self, www_authenticate: str | None) -> None:
        if www_authenticate:
            self._challenge = parse_challenge(www_authenticate)

    def headers(self, scopes: tuple[str, ...]) -> dict[str, str]:
        """The Authorization header for a request needing ``scopes`` (empty before any challenge)."""
        if self._challenge is None:
            return {}
        scheme, params = self._challenge
        if scheme == "basic":
            return {"Authorization": self.credentials.basic_header()} if self.credentials else {}
        if scheme == "bearer":
            return {"Authorization": f"Bearer {self._token(params, scopes)}"}
        return {}

    def retry_after_unauthorized(self, response, scopes: tuple[str, ...]) -> bool:
        """After a 401: learn the challenge, drop stale tokens; True when a retry could succeed."""
        before = self._challenge
        self.learn(response.headers.get("WWW-Authenticate"))
        if self._challenge is None:
            return False
        scheme, params = self._challenge
        if scheme == "basic":
            return self.credentials is not None and before != self._challenge
        with self._lock:
            had_token = self._tokens.pop(self._key(params, scopes), None) is not None
        return not had_token

    def _key(self, params: dict, scopes: tuple[str, ...]) -> tuple:
        return params.get("realm"), params.get("service"), tuple(sorted(set(scopes)))

    def _token(self, params: dict, scopes: tuple[str, ...]) -> str:
        key = self._key(params, scopes)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            token, lifetime = self._fetch_token(params, key[2])
            self._tokens[key] = (token, time.monotonic() + max(lifetime - 10, 1))
            return token

    def _fetch_token(self, params: dict, scopes: tuple[str, ...]) -> tuple[str, float]:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"registry {self.registry} asked for a bearer token without a realm")
        query = [("service", params["service"])] if params.get("service") else []
        query += [("scope", s) for s in scopes]
        headers = {"Authorization": self.credentials.basic_header()} if self.credentials else {}
        self.token_requests += 1
        try:
            resp = self._session.request(
                "GET", realm, params=query, headers=headers, verify=self._verify, timeout=self._timeout
            )
        except Exception as exc:  # requests' exceptions; requests is imported lazily
            raise RegistryError(
                f"cannot reach the token service of registry {self.registry}: {mask_url(realm)}",
                hint="check the network path to the registry's auth realm",
            ) from exc
        if resp.status_code in (401, 403):
            raise AuthError(
                f"the token service of registry {self.registry} rejected the credentials",
                hint="set VCI_REGISTRY_USER/VCI_REGISTRY_PASSWORD or docker login",
            )
        if resp.status_code != 200:
            raise RegistryError(f"token service of registry {self.registry} answered HTTP {resp.status_code}")
        body = resp.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"token service of registry {self.registry} returned no token")
        remember(token)
        return token, float(body.get("expires_in") or 60)
