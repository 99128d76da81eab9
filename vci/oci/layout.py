"""OCI image layout directories (``oci-layout``, ``index.json``, ``blobs/sha256/``): write images, read bases.

What is written is accepted by ``skopeo inspect oci:DIR:TAG`` and ``umoci unpack --image DIR:TAG``; tags
are the ``org.opencontainers.image.ref.name`` annotation on the index entry.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..digests import hex_of, sha256_bytes
from ..errors import BuildError, IntegrityError, NotFoundError
from ..files import commit, temporary_for, write_replacing
from . import INDEX_TYPES, OCI_INDEX, REF_NAME, Descriptor, canonical_json
from .image import DEFAULT_PLATFORM, Image, Index, image_from_parts, images_of, select_manifest

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"


def blob_path(directory: str | Path, digest: str) -> Path:
    return Path(directory) / "blobs" / "sha256" / hex_of(digest)


def write_layout(directory: str | Path, image: Image | Index, tag: str | None = None) -> Descriptor:
    """Add ``image`` (or an index and each of its images) and its blobs to the layout at ``directory``,
    named ``tag``; return its descriptor. Only the image or index itself is named in ``index.json``."""
    directory = Path(directory)
    (directory / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    write_replacing(directory / LAYOUT_FILE, canonical_json({"imageLayoutVersion": "1.0.0"}))
    for layer in image.layers:
        if layer.path is None:
            raise BuildError(
                f"layer {layer.digest} has no local bytes to write into {directory}",
                hint="pull the base image into a layout or cache first",
            )
        _copy_blob(layer.path, blob_path(directory, layer.digest))
    for each in images_of(image):
        _write_blob(directory, each.config_bytes)
        _write_blob(directory, each.manifest_bytes)
    _write_blob(directory, image.manifest_bytes)
    descriptor = image.descriptor(**({REF_NAME: tag} if tag else {}))
    _add_to_index(directory, descriptor)
    return descriptor


def read_layout(directory: str | Path, tag: str | None = None, platform: str = DEFAULT_PLATFORM) -> Image:
    """The image named ``tag`` in a layout (the only one when ``tag`` is None), resolved to ``platform``."""
    directory = Path(directory)
    index = _read_index(directory)
    entry = _pick_entry(index.get("manifests", []), tag, directory)
    manifest_bytes = read_blob(directory, entry.digest)
    while entry.media_type in INDEX_TYPES:
        entry = select_manifest(json.loads(manifest_bytes), platform)
        manifest_bytes = read_blob(directory, entry.digest)
    manifest = json.loads(manifest_bytes)
    config_bytes = read_blob(directory, manifest["config"]["digest"])

    def locate(digest: str) -> Path | None:
        path = blob_path(directory, digest)
        return path if path.is_file() else None

    return image_from_parts(manifest_bytes, config_bytes, locate)


def read_blob(directory: str | Path, digest: str) -> bytes:
    """A small blob (manifest, config) from the layout, checked against its digest."""
    try:
        data = blob_path(directory, digest).read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"OCI layout {directory} lacks blob {digest}") from None
    if sha256_bytes(data) != digest:
        raise IntegrityError(
            f"blob {digest} in {directory} does not match its digest",
            hint="the layout was modified; write it again",
        )
    return data


def layout_tags(directory: str | Path) -> dict[str, str]:
    """``{tag: digest}`` of the named images in a layout."""
    return {
        m["annotations"][REF_NAME]: m["digest"]
        for m in _read_index(Path(directory)).get("manifests", [])
        if REF_NAME in (m.get("annotations") or {})
    }


def _read_index(directory: Path) -> dict:
    try:
        return json.loads((directory / INDEX_FILE).read_bytes())
    except FileNotFoundError:
        raise NotFoundError(
            f"{directory} is not an OCI image layout (no {INDEX_FILE})",
            hint="write one with vci or `skopeo copy ... oci:DIR:TAG`",
        ) from None
    except ValueError as exc:
        raise IntegrityError(f"{directory / INDEX_FILE} is not valid JSON: {exc}") from exc


def _pick_entry(manifests: list[dict], tag: str | None, directory: Path) -> Descriptor:
    if tag is None:
        if len(manifests) != 1:
            raise NotFoundError(f"OCI layout {directory} holds {len(manifests)} images; name one with DIR:TAG")
        return Descriptor.from_json(manifests[0])
    for m in manifests:
        if (m.get("annotations") or {}).get(REF_NAME) == tag:
            return Descriptor.from_json(m)
    raise NotFoundError(
        f"OCI layout {directory} has no image tagged {tag!r}",
        hint=f"tags there: {', '.join(layout_tags(directory)) or 'none'}",
    )


def _add_to_index(directory: Path, descriptor: Descriptor) -> None:
    path = directory / INDEX_FILE
    index: dict[str, Any] = json.loads(path.read_bytes()) if path.exists() else {"schemaVersion": 2, "manifests": []}
    name = descriptor.annotations.get(REF_NAME)
    kept = [
        m
        for m in index.get("manifests", [])
        if not (name and (m.get("annotations") or {}).get(REF_NAME) == name)
        and not (not name and m["digest"] == descriptor.digest and not m.get("annotations"))
    ]
    index.update({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": kept + [descriptor.to_json()]})
    write_replacing(path, canonical_json(index))


def _write_blob(directory: Path, data: bytes) -> None:
    path = blob_path(directory, sha256_bytes(data))
    if not path.exists():
        write_replacing(path, data)


def _copy_blob(source: Path, dest: Path) -> None:
    if dest.exists() and dest.stat().st_size == source.stat().st_size:
        return
    with temporary_for(dest) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        commit(tmp, dest)
