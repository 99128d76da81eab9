"""Whole-image moves between local disk and registries: push an Image, copy (promote) an image by digest.

Functions over a ``RegistryClient`` (as go-containerregistry's ``remote.Write(ref, img, options...)``):
``push_image(client, image_or_index, repo)``, ``copy_image(client, source, dst_repo)``, ``fetch_layers(client,
image, directory)``. The client knows blobs and manifests of one registry; this module knows images.

Order is what makes a push safe to interrupt: every blob first (in parallel), then the config, then the
manifest by digest, and only then the tag. A failure anywhere leaves the old tag on the old digest. A blob
the registry already has is never sent; one in another repository of the same registry is mounted.
"""

from __future__ import annotations

import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from ..errors import BuildError
from ..refs import Reference, parse_reference
from . import INDEX_TYPES, Descriptor
from .image import Image, Index, images_of
from .layout import blob_path
from .registry import RegistryClient, RegistryClients
from .stream import chunk_reader


@dataclass
class TransferResult:
    """What a push or copy did: the image digest, and per blob whether it was sent, mounted or skipped."""

    reference: str
    digest: str
    uploaded: list[str] = field(default_factory=list)
    mounted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bytes_moved: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, outcome: str, digest: str, nbytes: int) -> None:
        with self._lock:
            getattr(self, outcome).append(digest)
            self.bytes_moved += nbytes

    def to_json(self) -> dict:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "uploaded": self.uploaded,
            "mounted": self.mounted,
            "skipped": self.skipped,
            "bytes_moved": self.bytes_moved,
        }


def push_image(
    client: RegistryClient,
    image: Image | Index,
    repo: str,
    *,
    tag: str | None = None,
    parallel: int = 4,
    progress=None,
) -> TransferResult:
    """Upload ``image`` to ``repo`` (blobs, config, manifest by digest, then ``tag``). An index: every
    platform's blobs (a shared layer once), configs and manifests, then the index by digest, then ``tag``."""
    result = TransferResult(f"{client.registry}/{repo}@{image.digest}", image.digest)
    layers = list({layer.digest: layer for layer in image.layers}.values())
    # the registries base layers come from: one client each, made like the destination's on first use
    sources = RegistryClients(lambda registry, _: client.sibling(registry))

    def push_one(layer):
        outcome, nbytes = _push_layer(client, repo, layer, sources)
        result.record(outcome, layer.digest, nbytes)
        if progress:
            progress(outcome, layer.digest, layer.size)

    _run_parallel(push_one, layers, parallel)
    for each in images_of(image):
        config = each.config_descriptor
        sent = client.put_blob(repo, config.digest, config.size, lambda each=each: io.BytesIO(each.config_bytes))
        result.record("uploaded" if sent else "skipped", config.digest, config.size if sent else 0)
        if each is not image:
            _put_manifest_then_tag(client, repo, each.manifest_bytes, each.media_type, each.digest, None, result)
    _put_manifest_then_tag(client, repo, image.manifest_bytes, image.media_type, image.digest, tag, result)
    return result


def _push_layer(client: RegistryClient, repo: str, layer, sources: RegistryClients) -> tuple[str, int]:
    origin_registry, _, origin_repo = (layer.origin or "").partition("/")
    opener = layer.open if layer.path is not None else None
    if opener is None and origin_repo:  # streamed from where it came from (its client made on first use)
        opener = _streamed(lambda: sources.get(origin_registry), origin_repo, layer.digest)
    return _place_blob(client, repo, layer.digest, layer.size, (origin_registry, origin_repo), opener)


def _place_blob(client: RegistryClient, repo: str, digest: str, size: int, origin: tuple[str, str], opener):
    """Put one blob into ``repo`` the cheapest way: nothing if it is there, a mount from ``origin``
    (registry, repository) on the same registry, else an upload of what ``opener()`` reads."""
    if client.has_blob(repo, digest):
        return "skipped", 0
    origin_registry, origin_repo = origin
    if origin_registry == client.registry and origin_repo not in ("", repo):
        if client.mount_blob(repo, digest, origin_repo):
            return "mounted", 0
    if opener is None:
        raise _no_bytes(digest)
    client.put_blob(repo, digest, size, opener, check_exists=False)
    return "uploaded", size


def copy_image(
    client: RegistryClient,
    source: str | Reference,
    dst_repo: str,
    *,
    tag: str | None = None,
    source_client: RegistryClient | None = None,
    parallel: int = 4,
) -> TransferResult:
    """Copy ``source`` (``registry/repo@digest`` or ``:tag``) into ``dst_repo`` of ``client``'s registry.

    The manifest bytes are copied verbatim, so the digest is preserved; on one registry blobs are
    mounted across repositories (kilobytes move, whatever the image size).
    """
    ref = parse_reference(source) if isinstance(source, str) else source
    src = source_client or (client if ref.registry == client.registry else client.sibling(ref.registry))
    result = TransferResult("", "")
    digest, data, media_type = _copy_manifest(src, ref.repository, ref.identifier, client, dst_repo, result, parallel)
    result.reference, result.digest = f"{client.registry}/{dst_repo}@{digest}", digest
    if tag:
        client.put_manifest(dst_repo, data, media_type, tag)
    return result


def _copy_manifest(src, src_repo, identifier, dst, dst_repo, result, parallel):
    data, media_type, digest = src.get_manifest(src_repo, identifier)
    manifest = json.loads(data)
    if media_type in INDEX_TYPES or "manifests" in manifest:
        for child in manifest.get("manifests", []):
            _copy_manifest(src, src_repo, child["digest"], dst, dst_repo, result, parallel)
    else:
        blobs = [Descriptor.from_json(manifest["config"])] + [Descriptor.from_json(d) for d in manifest["layers"]]

        def copy_one(desc):
            opener = _streamed(lambda: src, src_repo, desc.digest)
            origin = (src.registry, src_repo)
            outcome, nbytes = _place_blob(dst, dst_repo, desc.digest, desc.size, origin, opener)
            result.record(outcome, desc.digest, nbytes)

        placed = {*result.uploaded, *result.mounted, *result.skipped}  # by an index's earlier images
        _run_parallel(copy_one, [d for d in {d.digest: d for d in blobs}.values() if d.digest not in placed], parallel)
    dst.put_manifest(dst_repo, data, media_type, digest)
    result.bytes_moved += len(data)
    return digest, data, media_type


def _no_bytes(digest: str) -> BuildError:
    return BuildError(f"layer {digest} has neither local bytes nor a registry it came from")


def _streamed(source, repo: str, digest: str):
    """An opener for ``put_blob``: a file streaming ``digest`` from ``repo`` of the client ``source()``."""
    return lambda: chunk_reader(source().get_blob(repo, digest))


def _put_manifest_then_tag(
    client: RegistryClient,
    repo: str,
    data: bytes,
    media_type: str,
    digest: str,
    tag: str | None,
    result: TransferResult,
) -> None:
    client.put_manifest(repo, data, media_type, digest)
    result.bytes_moved += len(data)
    if tag:
        client.put_manifest(repo, data, media_type, tag)


def fetch_layers(client: RegistryClient, image: Image, directory, *, parallel: int = 4) -> Image:
    """``image`` with its registry-only layers downloaded (verified) to ``directory/blobs/sha256/<hex>``.

    The directory can be an OCI layout being written, so that ``write_layout`` finds the blobs in place.
    """

    def fetch(layer):
        if layer.path is not None:
            return layer
        _, _, repo = (layer.origin or "").partition("/")
        if not repo:
            raise _no_bytes(layer.digest)
        path = blob_path(directory, layer.digest)
        if not (path.is_file() and path.stat().st_size == layer.size):
            client.fetch_blob(repo, layer.digest, path)
        return replace(layer, path=path)

    if parallel <= 1:
        return replace(image, layers=tuple(fetch(layer) for layer in image.layers))
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return replace(image, layers=tuple(pool.map(fetch, image.layers)))


def _run_parallel(fn, items: list, parallel: int) -> None:
    """Run ``fn`` over ``items`` on a thread pool; the first failure is raised after all have finished."""
    if parallel <= 1 or len(items) <= 1:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [pool.submit(fn, item) for item in items]
    for future in futures:
        future.result()
