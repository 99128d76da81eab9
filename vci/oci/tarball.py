"""A ``docker load`` archive of an image or index: ``manifest.json`` (Config, RepoTags, Layers) and an OCI layout.

The archive is what ``docker save`` writes since Docker 25: blobs under ``blobs/sha256/``, referenced both
by ``manifest.json`` (for ``docker load`` and ``skopeo ... docker-archive:``) and by ``index.json``. Layers
stay gzip-compressed; ``docker load`` and skopeo decompress them and check the config's diff_ids.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from ..errors import BuildError
from ..files import replacing
from ..refs import parse_reference
from . import OCI_INDEX, REF_NAME, canonical_json
from .image import Image, Index, images_of

_EPOCH = 0


def write_tarball(path: str | Path, image: Image | Index, repo_tags: list[str] | None = None) -> Path:
    """Write ``image`` as a loadable archive at ``path``; ``repo_tags`` like ``registry/repo:tag``.

    An index is written whole (``index.json`` names it, every platform's blobs are there, for OCI tools),
    and ``manifest.json`` lists its first image only: ``docker load`` loads one image per tag."""
    tags = [_normalised_tag(t) for t in repo_tags or []]
    path = Path(path)
    try:
        with replacing(path) as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in _small_files(image, tags):
                _add_bytes(tar, name, data)
            _add_layers(tar, image)
    except OSError as exc:
        raise BuildError(f"could not write image archive {path}: {exc}") from exc
    return path


def _small_files(image: Image | Index, tags: list[str]) -> list[tuple[str, bytes | None]]:
    """The archive's members other than layers, by name; None marks a directory."""
    loaded = images_of(image)[0]
    docker_manifest = [
        {
            "Config": _blob_name(loaded.config_descriptor.digest),
            "RepoTags": tags,
            "Layers": [_blob_name(layer.digest) for layer in loaded.layers],
        }
    ]
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [image.descriptor(**({REF_NAME: tags[0]} if tags else {})).to_json()],
    }
    blobs: dict[str, bytes | None] = {}
    for each in images_of(image):
        blobs[_blob_name(each.config_descriptor.digest)] = each.config_bytes
        blobs[_blob_name(each.digest)] = each.manifest_bytes
    blobs[_blob_name(image.digest)] = image.manifest_bytes
    return [
        ("blobs", None),
        ("blobs/sha256", None),
        *blobs.items(),
        ("index.json", canonical_json(index)),
        ("manifest.json", canonical_json(docker_manifest)),
        ("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"})),
    ]


def _add_layers(tar: tarfile.TarFile, image: Image | Index) -> None:
    seen = set()
    for layer in image.layers:
        if layer.digest in seen:
            continue
        seen.add(layer.digest)
        if layer.path is None:
            raise BuildError(
                f"layer {layer.digest} has no local bytes for the archive",
                hint="pull the base image into a layout or cache first",
            )
        info = _info(_blob_name(layer.digest))
        info.size = layer.size
        with layer.open() as f:
            tar.addfile(info, f)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes | None) -> None:
    info = _info(name)
    if data is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def _info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = _EPOCH, 0, 0, "", "", 0o644
    return info


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


def _normalised_tag(text: str) -> str:
    """``registry/repo:tag`` as docker expects (tag ``latest`` when absent; digests cannot be loaded)."""
    ref = parse_reference(text)
    if ref.digest and not ref.tag:
        raise BuildError(f"{text}: docker load needs a tag, not a digest", hint="give repo:tag")
    name = ref.repository.removeprefix("library/") if ref.registry == "registry-1.docker.io" else ref.context()
    return f"{name}:{ref.tag or 'latest'}"
