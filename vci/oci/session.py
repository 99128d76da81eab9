"""One registry host over HTTP: scheme discovery, authentication, bounded retries, and errors mapped to vci's.

Transient failures (connection errors, 5xx, 429) are retried with exponential backoff honouring
``Retry-After`` (bounded by ``max_retry_after``); 4xx never are. Failures become the vci error tree:
401/403 ``AuthError``, 404 ``NotFoundError``, anything else ``RegistryError`` with the registry's own
message. Logs carry method, masked URL and status only. ``requests`` is imported only when needed.
"""

from __future__ import annotations

import logging
import time
import warnings

from ..errors import AuthError, NotFoundError, RegistryError, VciError
from .auth import Authenticator, mask_url, resolve_credentials

log = logging.getLogger("vci.oci.registry")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
MiB = 1 << 20
AUTH_HINT = "set VCI_REGISTRY_USER/VCI_REGISTRY_PASSWORD or docker login"


class RegistrySession:
    """Requests to one registry host; ``session`` is any object with ``requests.Session.request``.

    ``insecure`` (default: True for localhost/127.0.0.1) allows unverified TLS and plain http;
    otherwise TLS is verified against ``ca_bundle`` or the system store.
    """

    def __init__(
        self,
        registry: str,
        *,
        username: str | None = None,
        password: str | None = None,
        insecure: bool | None = None,
        ca_bundle: str | None = None,
        session=None,
        chunk_size: int = 8 * MiB,
        retries: int = 4,
        backoff: float = 0.5,
        max_retry_after: float = 10.0,
        timeout: float = 60.0,
    ):
        self.registry = registry
        self.insecure = registry.rsplit(":", 1)[0] in LOCAL_HOSTS if insecure is None else insecure
        self.chunk_size = chunk_size
        self.retries = retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.timeout = timeout
        self._verify = False if self.insecure else (ca_bundle or True)
        self._session = session if session is not None else _new_session()
        if self.insecure:
            warnings.filterwarnings("ignore", message="Unverified HTTPS request")
        self._base: str | None = None
        credentials = resolve_credentials(registry, username, password)
        self.auth = Authenticator(registry, credentials, self._session, self._verify, timeout)

    def ping(self) -> str:
        """Find the scheme (https; then http when insecure) and the auth challenge; return the base URL."""
        if self._base:
            return self._base
        for attempt in range(self.retries + 1):
            try:
                return self._ping_once()
            except RegistryError as exc:
                if attempt >= self.retries or not getattr(exc, "transient", False):
                    raise
                self._sleep(attempt, None)
        raise AssertionError("unreachable")

    def _ping_once(self) -> str:
        schemes = ("https", "http") if self.insecure else ("https",)
        for scheme in schemes:
            try:
                resp = self._session.request(
                    "GET", f"{scheme}://{self.registry}/v2/", verify=self._verify, timeout=self.timeout
                )
            except Exception as exc:
                if scheme == schemes[-1]:
                    raise self._unreachable(exc) from exc
                continue
            if resp.status_code in (200, 401):
                self.auth.learn(resp.headers.get("WWW-Authenticate") if resp.status_code == 401 else None)
                self._base = f"{scheme}://{self.registry}"
                return self._base
            if resp.status_code == 429 or resp.status_code >= 500:
                error = RegistryError(
                    f"registry {self.registry} is unavailable: GET /v2/ answered "
                    f"{resp.status_code} {_error_message(resp)}",
                    hint="retry later",
                )
                error.transient = True
                raise error
            raise RegistryError(
                f"{self.registry} is not an OCI registry: GET /v2/ answered {resp.status_code}",
                hint="check the registry address",
            )
        raise AssertionError("unreachable")

    def _unreachable(self, exc) -> RegistryError:
        hint = (
            "check the host and port and that the registry is running"
            if self.insecure
            else "check the host and port; for a plain-http registry pass --insecure"
        )
        if "SSL" in type(exc).__name__ or "certificate" in str(exc).lower():
            hint = "the TLS certificate was not trusted: pass a CA bundle, or --insecure for a local registry"
        error = RegistryError(f"cannot reach registry {self.registry}: {type(exc).__name__}", hint=hint)
        error.transient = _is_connection_error(exc)
        return error

    def request(self, method: str, path: str, *, scopes: tuple[str, ...], retry: bool = True, **kwargs):
        """Send one request (a path under the registry, or a full URL) with auth and bounded retries."""
        url = path if path.startswith(("http://", "https://")) else self.ping() + path
        attempts = self.retries + 1 if retry else 1
        for attempt in range(attempts):
            try:
                resp = self._send(method, url, scopes, kwargs)
            except VciError:  # already one of vci's (an AuthError from the token service, say)
                raise
            except Exception as exc:
                if attempt + 1 >= attempts or not _is_connection_error(exc):
                    raise self._unreachable(exc) from exc
                self._sleep(attempt, None)
                continue
            if (resp.status_code == 429 or resp.status_code >= 500) and attempt + 1 < attempts:
                log.info("%s %s -> %s, retrying", method, mask_url(url), resp.status_code)
                self._sleep(attempt, resp.headers.get("Retry-After"))
                continue
            return resp
        raise AssertionError("unreachable")

    def _send(self, method: str, url: str, scopes: tuple[str, ...], kwargs: dict):
        kwargs = dict(kwargs)  # the caller's kwargs are reused on a retry
        headers = dict(kwargs.pop("headers", None) or {})
        for _ in range(2):
            resp = self._session.request(
                method,
                url,
                headers={**headers, **self.auth.headers(scopes)},
                verify=self._verify,
                timeout=self.timeout,
                **kwargs,
            )
            log.debug("%s %s -> %s", method, mask_url(url), resp.status_code)
            if resp.status_code != 401 or not self.auth.retry_after_unauthorized(resp, scopes):
                return resp
        return resp

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * (2**attempt)
        if retry_after and retry_after.strip().isdigit():
            delay = float(retry_after.strip())
        time.sleep(min(delay, self.max_retry_after))

    def check(self, resp, ok: tuple[int, ...], repo: str, what: str):
        """Return ``resp`` when its status is in ``ok``; otherwise raise the matching vci error."""
        if resp.status_code in ok:
            return resp
        if resp.status_code in (401, 403):
            raise AuthError(f"registry {self.registry} rejected the credentials for {repo}", hint=AUTH_HINT)
        message = _error_message(resp)
        if resp.status_code == 404:
            raise NotFoundError(f"{what} not found in {self.registry}/{repo}: {message}")
        error = RegistryError(
            f"registry {self.registry} refused {what} for {repo}: " f"HTTP {resp.status_code} {message}"
        )
        error.transient = resp.status_code == 429 or resp.status_code >= 500
        raise error


def scopes_for(repo: str, actions: str) -> tuple[str, ...]:
    """The token scopes a request on ``repo`` needs, e.g. ``("repository:ml/iris:pull,push",)``."""
    return (f"repository:{repo}:{actions}",)


def _error_message(resp) -> str:
    try:
        errors = resp.json().get("errors") or []
    except (ValueError, AttributeError):
        return getattr(resp, "reason", "") or ""
    text = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors)
    return text or resp.reason or ""


def _is_connection_error(exc: Exception) -> bool:
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        return False
    return isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout))


def _new_session():
    import requests

    return requests.Session()
