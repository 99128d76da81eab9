"""An OCI distribution registry client over HTTP (``requests``, imported lazily): blobs, manifests, auth, retries.

One ``RegistryClient`` talks to one registry host. Transient failures (connection errors, 5xx, 429) are
retried with bounded backoff honouring ``Retry-After``; 4xx never are. Failures become the vci error
tree: 401/403 ``AuthError``, a missing manifest ``NotFoundError``, anything else ``RegistryError`` with
the registry's own message. Logs name method, masked URL and status only. Pushing and copying whole
images lives in ``vci.oci.transfer``; ``push_image`` and ``copy_image`` here are thin entry points.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from urllib.parse import urljoin

from ..digests import sha256_bytes
from ..errors import AuthError, IntegrityError, NotFoundError, RegistryError
from ..refs import Reference, parse_reference
from . import INDEX_TYPES, MANIFEST_TYPES, Descriptor
from .auth import Authenticator, mask_url, resolve_credentials
from .image import DEFAULT_PLATFORM, Image, image_from_parts, select_manifest

log = logging.getLogger(__name__)
ACCEPT_MANIFESTS = ", ".join(MANIFEST_TYPES + INDEX_TYPES)
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
MiB = 1 << 20


class RegistryClient:
    """A client for one registry host; ``session`` is any object with ``requests.Session.request``."""

    def __init__(self, registry: str, *, username: str | None = None, password: str | None = None,
                 insecure: bool | None = None, ca_bundle: str | None = None, session=None,
                 chunk_size: int = 8 * MiB, retries: int = 4, backoff: float = 0.5,
                 max_retry_after: float = 10.0, timeout: float = 60.0):
        self.registry = registry
        self.insecure = registry.rsplit(":", 1)[0] in LOCAL_HOSTS if insecure is None else insecure
        self.chunk_size = chunk_size
        self.retries, self.backoff, self.max_retry_after, self.timeout = retries, backoff, max_retry_after, timeout
        self._verify = False if self.insecure else (ca_bundle or True)
        self._session = session if session is not None else _new_session()
        if self.insecure:
            warnings.filterwarnings("ignore", message="Unverified HTTPS request")
        self._base: str | None = None
        self.auth = Authenticator(registry, resolve_credentials(registry, username, password), self._session,
                                  self._verify, timeout)

    # --- connection -------------------------------------------------------------------------------------

    def ping(self) -> str:
        """Find the scheme (https; http too when insecure) and the auth challenge; return the base URL."""
        if self._base:
            return self._base
        schemes = ("https", "http") if self.insecure else ("https",)
        for scheme in schemes:
            try:
                resp = self._session.request("GET", f"{scheme}://{self.registry}/v2/", verify=self._verify,
                                             timeout=self.timeout)
            except Exception as exc:
                if scheme == schemes[-1]:
                    raise self._unreachable(exc) from exc
                continue
            if resp.status_code in (200, 401):
                self.auth.learn(resp.headers.get("WWW-Authenticate") if resp.status_code == 401 else None)
                self._base = f"{scheme}://{self.registry}"
                return self._base
            raise RegistryError(f"{self.registry} is not an OCI registry: GET /v2/ answered {resp.status_code}",
                                hint="check the registry address")
        raise AssertionError("unreachable")

    def _unreachable(self, exc) -> RegistryError:
        hint = ("check the host and port; for a plain-http registry pass --insecure" if not self.insecure
                else "check the host and port and that the registry is running")
        if "SSL" in type(exc).__name__ or "certificate" in str(exc).lower():
            hint = "the TLS certificate was not trusted: pass a CA bundle, or --insecure for a local registry"
        return RegistryError(f"cannot reach registry {self.registry}: {type(exc).__name__}", hint=hint)

    def request(self, method: str, path: str, *, scopes: tuple[str, ...], retry: bool = True, **kwargs):
        """Send one request (path under the registry, or a full URL) with auth and bounded retries."""
        url = path if path.startswith(("http://", "https://")) else self.ping() + path
        attempts = self.retries + 1 if retry else 1
        for attempt in range(attempts):
            try:
                resp = self._send(method, url, scopes, kwargs)
            except (RegistryError, AuthError):
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

    def _send(self, method, url, scopes, kwargs):
        kwargs = dict(kwargs)
        headers = dict(kwargs.pop("headers", None) or {})
        for _ in range(2):
            merged = {**headers, **self.auth.headers(scopes)}
            resp = self._session.request(method, url, headers=merged, verify=self._verify, timeout=self.timeout,
                                         allow_redirects=True, **kwargs)
            log.debug("%s %s -> %s", method, mask_url(url), resp.status_code)
            if resp.status_code != 401 or not self.auth.retry_after_unauthorized(resp, scopes):
                return resp
        return resp

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * (2 ** attempt)
        if retry_after and retry_after.strip().isdigit():
            delay = float(retry_after.strip())
        time.sleep(min(delay, self.max_retry_after))

    def check(self, resp, ok: tuple[int, ...], repo: str, what: str):
        """Return ``resp`` when its status is in ``ok``; otherwise raise the matching vci error."""
        if resp.status_code in ok:
            return resp
        if resp.status_code in (401, 403):
            raise AuthError(f"registry {self.registry} rejected the credentials for {repo}",
                            hint="set VCI_REGISTRY_USER/VCI_REGISTRY_PASSWORD or docker login")
        message = _error_message(resp)
        if resp.status_code == 404:
            raise NotFoundError(f"{what} not found in {self.registry}/{repo}: {message}")
        raise RegistryError(f"registry {self.registry} refused {what} for {repo}: HTTP {resp.status_code} {message}")

    # --- blobs ------------------------------------------------------------------------------------------

    def has_blob(self, repo: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scopes=_scopes(repo, "pull"))
        return self.check(resp, (200, 404), repo, f"blob {digest}").status_code == 200

    def get_blob(self, repo: str, digest: str):
        """Yield the blob's bytes in chunks; raise IntegrityError at the end if they do not match ``digest``."""
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scopes=_scopes(repo, "pull"), stream=True)
        self.check(resp, (200,), repo, f"blob {digest}")
        hasher = hashlib.sha256()
        with resp:
            for chunk in resp.iter_content(chunk_size=MiB):
                hasher.update(chunk)
                yield chunk
        if "sha256:" + hasher.hexdigest() != digest:
            raise IntegrityError(f"blob {digest} from {self.registry}/{repo} does not match its digest",
                                 hint="the registry returned corrupt data; retry or check the registry")

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Ask the registry to link ``digest`` from ``from_repo``; False when it wants an upload instead."""
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": from_repo},
                            scopes=_scopes(repo, "pull,push") + _scopes(from_repo, "pull"))
        self.check(resp, (201, 202), repo, f"blob mount of {digest}")
        if resp.status_code == 202:  # an upload session was opened instead: cancel it
            location = resp.headers.get("Location")
            if location:
                self.request("DELETE", urljoin(self.ping() + "/", location), scopes=_scopes(repo, "pull,push"),
                             retry=False)
        return resp.status_code == 201

    def put_blob(self, repo: str, digest: str, size: int, opener, *, check_exists: bool = True) -> bool:
        """Upload the blob ``opener()`` reads unless the registry has it; True when bytes were sent.

        Small blobs go in one PUT, larger ones in PATCH chunks of ``chunk_size``. A failed upload is
        retried from the start (a new session), since a half-applied PATCH cannot be trusted.
        """
        if check_exists and self.has_blob(repo, digest):
            return False
        for attempt in range(self.retries + 1):
            try:
                self._upload_once(repo, digest, size, opener)
                return True
            except RegistryError as exc:
                if isinstance(exc, AuthError) or attempt >= self.retries or not getattr(exc, "transient", False):
                    raise
                self._sleep(attempt, None)
        return True

    def _upload_once(self, repo: str, digest: str, size: int, opener) -> None:
        scopes = _scopes(repo, "pull,push")
        resp = self._upload_check(self.request("POST", f"/v2/{repo}/blobs/uploads/", scopes=scopes, retry=False),
                                  (202,), repo, digest)
        location = urljoin(self.ping() + "/", resp.headers["Location"])
        with opener() as source:
            if size <= self.chunk_size:
                body = source.read()
                resp = self.request("PUT", _with_digest(location, digest), scopes=scopes, retry=False, data=body,
                                    headers={"Content-Type": "application/octet-stream"})
                self._upload_check(resp, (201,), repo, digest)
                return
            offset = 0
            while chunk := source.read(self.chunk_size):
                headers = {"Content-Type": "application/octet-stream",
                           "Content-Range": f"{offset}-{offset + len(chunk) - 1}"}
                resp = self.request("PATCH", location, scopes=scopes, retry=False, data=chunk, headers=headers)
                self._upload_check(resp, (202,), repo, digest)
                location = urljoin(self.ping() + "/", resp.headers["Location"])
                offset += len(chunk)
        resp = self.request("PUT", _with_digest(location, digest), scopes=scopes, retry=False)
        self._upload_check(resp, (201,), repo, digest)

    def _upload_check(self, resp, ok, repo, digest):
        try:
            return self.check(resp, ok, repo, f"upload of blob {digest}")
        except RegistryError as exc:
            exc.transient = resp.status_code == 429 or resp.status_code >= 500
            raise

    # --- manifests --------------------------------------------------------------------------------------

    def get_manifest(self, repo: str, identifier: str) -> tuple[bytes, str, str]:
        """``(bytes, media_type, digest)`` of a manifest or index by tag or digest (digest verified)."""
        resp = self.request("GET", f"/v2/{repo}/manifests/{identifier}", scopes=_scopes(repo, "pull"),
                            headers={"Accept": ACCEPT_MANIFESTS})
        self.check(resp, (200,), repo, f"manifest {identifier}")
        data = resp.content
        digest = sha256_bytes(data)
        if identifier.startswith("sha256:") and digest != identifier:
            raise IntegrityError(f"manifest {identifier} from {self.registry}/{repo} does not match its digest")
        media_type = resp.headers.get("Content-Type", "").split(";")[0] or json.loads(data).get("mediaType", "")
        return data, media_type, digest

    def put_manifest(self, repo: str, manifest_bytes: bytes, media_type: str, tag_or_digest: str) -> str:
        resp = self.request("PUT", f"/v2/{repo}/manifests/{tag_or_digest}", scopes=_scopes(repo, "pull,push"),
                            data=manifest_bytes, headers={"Content-Type": media_type})
        self.check(resp, (200, 201), repo, f"manifest {tag_or_digest}")
        return sha256_bytes(manifest_bytes)

    def get_image(self, reference: str | Reference, platform: str = DEFAULT_PLATFORM) -> Image:
        """An image (an index resolved to ``platform``) whose layers stay in the registry (``origin`` set)."""
        ref = parse_reference(reference) if isinstance(reference, str) else reference
        data, media_type, _ = self.get_manifest(ref.repository, ref.identifier)
        if media_type in INDEX_TYPES or "manifests" in json.loads(data):
            chosen: Descriptor = select_manifest(json.loads(data), platform)
            data, media_type, _ = self.get_manifest(ref.repository, chosen.digest)
        config_digest = json.loads(data)["config"]["digest"]
        config = b"".join(self.get_blob(ref.repository, config_digest))
        return image_from_parts(data, config, origin=ref.context())

    # --- whole images -----------------------------------------------------------------------------------

    def push_image(self, image: Image, repo: str, tag: str | None = None, parallel: int = 4, progress=None):
        from .transfer import push_image
        return push_image(self, image, repo, tag=tag, parallel=parallel, progress=progress)

    def copy_image(self, source: str | Reference, dst_repo: str, tag: str | None = None, source_client=None,
                   parallel: int = 4):
        from .transfer import copy_image
        return copy_image(self, source, dst_repo, tag=tag, source_client=source_client, parallel=parallel)


def _scopes(repo: str, actions: str) -> tuple[str, ...]:
    return (f"repository:{repo}:{actions}",)


def _with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


def _error_message(resp) -> str:
    try:
        errors = resp.json().get("errors") or []
        return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors) or resp.reason
    except (ValueError, AttributeError):
        return getattr(resp, "reason", "") or ""


def _is_connection_error(exc: Exception) -> bool:
    import requests
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    return isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout))


def _new_session():
    import requests
    return requests.Session()
