"""One registry host over HTTP: scheme discovery, authentication, bounded retries, and errors mapped to vci's.

Transient failures (connection errors, 5xx, 429) are retried by ``vci.retry``'s policy: backoff with
jitter, ``Retry-After`` honoured up to ``max_retry_after``; 4xx never are. Failures become the vci error
tree: 401/403 ``AuthError``, 404 ``NotFoundError``, 429/5xx and dropped connections
``TransientRegistryError``, anything else ``RegistryError`` with the registry's own message. Logs carry
method, masked URL and status only. ``requests`` is imported only when needed.
"""

from __future__ import annotations

import logging
import warnings

from ..errors import (
    AuthError,
    NotFoundError,
    RegistryError,
    TransientRegistryError,
    VciError,
)
from ..redact import mask_url
from ..retry import RetryPolicy, retry_after_seconds, retrying
from .auth import Authenticator, resolve_credentials

log = logging.getLogger("vci.oci.registry")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
MiB = 1 << 20
AUTH_HINT = "set VCI_REGISTRY_USER/VCI_REGISTRY_PASSWORD or docker login"


class RegistrySession:
    """Requests to one registry host; ``session`` is any object with ``requests.Session.request``.

    ``insecure`` (default: True for localhost/127.0.0.1) allows unverified TLS and plain http;
    otherwise TLS is verified against ``ca_bundle`` or the system store. ``retries``, ``backoff`` and
    ``max_retry_after`` make the ``retry_policy`` unless one is given.
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
        retry_policy: RetryPolicy | None = None,
    ):
        self.registry = registry
        self.insecure = registry.rsplit(":", 1)[0] in LOCAL_HOSTS if insecure is None else insecure
        self.chunk_size = chunk_size
        self.retry_policy = retry_policy or RetryPolicy(
            attempts=retries + 1,
            backoff=backoff,
            max_backoff=max_retry_after,
            max_retry_after=max_retry_after,
        )
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
        return retrying(self._ping_once, self.retry_policy, what=f"GET {self.registry}/v2/", logger=log)

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
            if _busy(resp):
                raise TransientRegistryError(
                    f"registry {self.registry} is unavailable: GET /v2/ answered "
                    f"{resp.status_code} {_error_message(resp)}",
                    hint="retry later",
                    retry_after=_retry_after(resp),
                )
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
        error_type = TransientRegistryError if _is_connection_error(exc) else RegistryError
        return error_type(f"cannot reach registry {self.registry}: {type(exc).__name__}", hint=hint)

    def request(self, method: str, path: str, *, scopes: tuple[str, ...], retry: bool = True, **kwargs):
        """Send a request (a path under the registry, or a full URL) with auth; dropped connections and
        429/5xx answers are retried per ``retry_policy`` (unless ``retry=False``), and the last answer is
        returned whatever its status, for ``check``."""
        url = path if path.startswith(("http://", "https://")) else self.ping() + path
        policy = self.retry_policy if retry else self.retry_policy.once()
        what = f"{method} {mask_url(url)}"
        try:
            return retrying(lambda: self._attempt(method, url, scopes, kwargs), policy, what=what, logger=log)
        except _Busy as busy:
            return busy.response

    def _attempt(self, method: str, url: str, scopes: tuple[str, ...], kwargs: dict):
        """One request: its answer, or a TransientRegistryError to retry (``_Busy`` holds a 429/5xx)."""
        try:
            resp = self._send(method, url, scopes, kwargs)
        except VciError:  # already one of vci's (an AuthError from the token service, say)
            raise
        except Exception as exc:  # requests' exceptions; requests is imported lazily
            raise self._unreachable(exc) from exc
        if _busy(resp):
            raise _Busy(resp)
        return resp

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

    def check(self, resp, ok: tuple[int, ...], repo: str, what: str):
        """Return ``resp`` when its status is in ``ok``; otherwise raise the matching vci error."""
        if resp.status_code in ok:
            return resp
        if resp.status_code in (401, 403):
            raise AuthError(f"registry {self.registry} rejected the credentials for {repo}", hint=AUTH_HINT)
        message = _error_message(resp)
        if resp.status_code == 404:
            raise NotFoundError(f"{what} not found in {self.registry}/{repo}: {message}")
        message = f"registry {self.registry} refused {what} for {repo}: HTTP {resp.status_code} {message}"
        if _busy(resp):
            raise TransientRegistryError(message, retry_after=_retry_after(resp))
        raise RegistryError(message)


class _Busy(TransientRegistryError):
    """A 429 or 5xx answer inside ``request``: retried, and when the policy is spent handed to ``check``."""

    def __init__(self, resp):
        super().__init__(f"HTTP {resp.status_code}", retry_after=_retry_after(resp))
        self.response = resp


def scopes_for(repo: str, actions: str) -> tuple[str, ...]:
    """The token scopes a request on ``repo`` needs, e.g. ``("repository:ml/iris:pull,push",)``."""
    return (f"repository:{repo}:{actions}",)


def _busy(resp) -> bool:
    """429 Too Many Requests or any 5xx: the registry may answer otherwise in a moment."""
    return resp.status_code == 429 or resp.status_code >= 500


def _retry_after(resp) -> float | None:
    return retry_after_seconds(resp.headers.get("Retry-After"))


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
