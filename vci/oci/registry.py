"""An OCI distribution registry client: blobs (check, fetch verified, upload, mount), manifests, images.

``RegistryClient`` talks to one registry host; connection, auth, retries and error mapping come from
``RegistrySession``. Whole images are moved by the functions of ``vci.oci.transfer``, which take a client
(as go-containerregistry's ``remote.Write(ref, img)``); this module never imports them. ``requests`` is
imported lazily (importing this is light).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

from ..digests import sha256_bytes
from ..errors import IntegrityError
from ..files import copy_chunks, replacing
from ..refs import Reference, parse_reference
from ..retry import retrying
from . import INDEX_TYPES, MANIFEST_TYPES
from .image import DEFAULT_PLATFORM, Image, image_from_parts, select_manifest
from .session import MiB, RegistrySession, log, scopes_for

ACCEPT_MANIFESTS = ", ".join(MANIFEST_TYPES + INDEX_TYPES)
OCTETS = {"Content-Type": "application/octet-stream"}


class RegistryClient(RegistrySession):
    """Blob, manifest and image operations on one registry (see RegistrySession for the options)."""

    def sibling(self, registry: str) -> RegistryClient:
        """A client for another registry, with this one's chunk size and retries."""
        return RegistryClient(registry, chunk_size=self.chunk_size, retry_policy=self.retry_policy)

    # --- blobs ------------------------------------------------------------------------------------------

    def has_blob(self, repo: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scopes=scopes_for(repo, "pull"))
        return self.check(resp, (200, 404), repo, f"blob {digest}").status_code == 200

    def get_blob(self, repo: str, digest: str):
        """Yield the blob's bytes in chunks; raise IntegrityError at the end unless they match ``digest``."""
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scopes=scopes_for(repo, "pull"), stream=True)
        self.check(resp, (200,), repo, f"blob {digest}")
        hasher = hashlib.sha256()
        with resp:
            for chunk in resp.iter_content(chunk_size=MiB):
                hasher.update(chunk)
                yield chunk
        if "sha256:" + hasher.hexdigest() != digest:
            raise IntegrityError(
                f"blob {digest} from {self.registry}/{repo} does not match its digest",
                hint="the registry returned corrupt data; retry or check the registry",
            )

    def fetch_blob(self, repo: str, digest: str, dest: str | Path) -> Path:
        """Download a blob to ``dest`` (written beside it, renamed when verified); return ``dest``."""
        with replacing(dest) as f:  # get_blob raises at the end when the bytes do not match the digest
            copy_chunks(self.get_blob(repo, digest), f)
        return Path(dest)

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Ask the registry to link ``digest`` from ``from_repo``; False when it offers an upload instead."""
        resp = self.request(
            "POST",
            f"/v2/{repo}/blobs/uploads/",
            params={"mount": digest, "from": from_repo},
            scopes=scopes_for(repo, "pull,push") + scopes_for(from_repo, "pull"),
        )
        self.check(resp, (201, 202), repo, f"blob mount of {digest}")
        if resp.status_code == 202 and resp.headers.get("Location"):  # cancel the upload session it opened
            self.request(
                "DELETE",
                urljoin(self.ping() + "/", resp.headers["Location"]),
                scopes=scopes_for(repo, "pull,push"),
                retry=False,
            )
        return resp.status_code == 201

    def put_blob(self, repo: str, digest: str, size: int, opener, *, check_exists: bool = True) -> bool:
        """Upload the blob ``opener()`` reads unless the registry has it; True when bytes were sent.

        Blobs up to ``chunk_size`` go in one PUT, larger ones in PATCH chunks of ``chunk_size``. A failed
        upload is retried from the start (a new session) per ``retry_policy``: a half-applied PATCH cannot
        be trusted, so each request of an upload is sent once.
        """
        if check_exists and self.has_blob(repo, digest):
            return False
        upload = lambda: self._upload_once(repo, digest, size, opener)  # noqa: E731
        retrying(upload, self.retry_policy, what=f"upload of blob {digest} to {repo}", logger=log)
        return True

    def _upload_once(self, repo: str, digest: str, size: int, opener) -> None:
        scopes = scopes_for(repo, "pull,push")
        what = f"upload of blob {digest}"
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", scopes=scopes, retry=False)
        location = urljoin(self.ping() + "/", self.check(resp, (202,), repo, what).headers["Location"])
        with opener() as source:
            if size <= self.chunk_size:
                resp = self.request(
                    "PUT",
                    _with_digest(location, digest),
                    scopes=scopes,
                    retry=False,
                    data=source.read(),
                    headers=OCTETS,
                )
                self.check(resp, (201,), repo, what)
                return
            offset = 0
            while chunk := source.read(self.chunk_size):
                headers = {**OCTETS, "Content-Range": f"{offset}-{offset + len(chunk) - 1}"}
                resp = self.request("PATCH", location, scopes=scopes, retry=False, data=chunk, headers=headers)
                location = urljoin(self.ping() + "/", self.check(resp, (202,), repo, what).headers["Location"])
                offset += len(chunk)
        resp = self.request("PUT", _with_digest(location, digest), scopes=scopes, retry=False)
        self.check(resp, (201,), repo, what)

    # --- manifests --------------------------------------------------------------------------------------

    def get_manifest(self, repo: str, identifier: str) -> tuple[bytes, str, str]:
        """``(bytes, media_type, digest)`` of a manifest or index by tag or digest (a digest is verified)."""
        resp = self.request(
            "GET",
            f"/v2/{repo}/manifests/{identifier}",
            scopes=scopes_for(repo, "pull"),
            headers={"Accept": ACCEPT_MANIFESTS},
        )
        data = self.check(resp, (200,), repo, f"manifest {identifier}").content
        digest = sha256_bytes(data)
        if identifier.startswith("sha256:") and digest != identifier:
            raise IntegrityError(
                f"manifest {identifier} from {self.registry}/{repo} does not match its digest",
                hint="the registry returned corrupt data; retry or check the registry",
            )
        media_type = resp.headers.get("Content-Type", "").split(";")[0]
        if media_type not in MANIFEST_TYPES + INDEX_TYPES:
            media_type = json.loads(data).get("mediaType", media_type)
        return data, media_type, digest

    def put_manifest(self, repo: str, manifest_bytes: bytes, media_type: str, tag_or_digest: str) -> str:
        """Store a manifest under a tag or its digest; return its digest."""
        resp = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{tag_or_digest}",
            scopes=scopes_for(repo, "pull,push"),
            data=manifest_bytes,
            headers={"Content-Type": media_type},
        )
        self.check(resp, (200, 201), repo, f"manifest {tag_or_digest}")
        return sha256_bytes(manifest_bytes)

    def get_image(self, reference: str | Reference, platform: str = DEFAULT_PLATFORM) -> Image:
        """An image (an index resolved to ``platform``) whose layers stay in the registry (``origin`` set)."""
        ref = parse_reference(reference) if isinstance(reference, str) else reference
        data, media_type, _ = self.get_manifest(ref.repository, ref.identifier)
        if media_type in INDEX_TYPES or "manifests" in json.loads(data):
            chosen = select_manifest(json.loads(data), platform)
            data, media_type, _ = self.get_manifest(ref.repository, chosen.digest)
        config = b"".join(self.get_blob(ref.repository, json.loads(data)["config"]["digest"]))
        return image_from_parts(data, config, origin=ref.context())


def _with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


class RegistryClients:
    """One client per registry, made on first use and then shared (its TLS context, ping and login made
    once): by ``make(registry, insecure)``, by default a plain ``RegistryClient``. Thread-safe."""

    def __init__(self, make: Callable[[str, bool | None], RegistryClient] | None = None):
        self._make = make or (lambda registry, insecure: RegistryClient(registry, insecure=insecure))
        self._clients: dict[tuple[str, bool | None], RegistryClient] = {}
        self._lock = threading.Lock()

    def get(self, registry: str, insecure: bool | None = None) -> RegistryClient:
        with self._lock:
            if (registry, insecure) not in self._clients:
                self._clients[(registry, insecure)] = self._make(registry, insecure)
            return self._clients[(registry, insecure)]
