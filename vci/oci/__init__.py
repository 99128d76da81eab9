"""Daemonless OCI images: media types, the Descriptor noun, and canonical JSON shared by every module here.

Modules are named after where bytes live: ``layers`` (tar+gzip blobs on local disk), ``image`` (pure
assembly of config and manifest), ``layout`` (an OCI image layout directory), ``tarball`` (a
``docker load`` archive), ``registry`` (an OCI distribution registry over HTTP). ``transfer`` moves
whole images with functions over a registry client (push, copy by digest, fetch layers); ``registry``
never imports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_FOREIGN = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
REF_NAME = "org.opencontainers.image.ref.name"

# Docker schema2 media types and their OCI equivalents: the blobs are identical, only the names differ.
DOCKER_TO_OCI = {
    DOCKER_MANIFEST: OCI_MANIFEST,
    DOCKER_MANIFEST_LIST: OCI_INDEX,
    DOCKER_CONFIG: OCI_CONFIG,
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_LAYER_FOREIGN: OCI_LAYER_FOREIGN,
}


def canonical_json(value) -> bytes:
    """The bytes vci writes for a manifest, index or config: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Descriptor:
    """What a manifest says about a blob: its media type, digest and size (plus optional extras)."""

    media_type: str
    digest: str
    size: int
    annotations: dict = field(default_factory=dict, compare=False, hash=False)
    platform: dict | None = field(default=None, compare=False, hash=False)

    def to_json(self) -> dict:
        value = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            value["annotations"] = dict(self.annotations)
        if self.platform:
            value["platform"] = dict(self.platform)
        return value

    @classmethod
    def from_json(cls, value: dict) -> Descriptor:
        return cls(
            value["mediaType"],
            value["digest"],
            int(value["size"]),
            dict(value.get("annotations") or {}),
            value.get("platform"),
        )

    def as_oci(self) -> Descriptor:
        """The same blob under its OCI media type (Docker schema2 names converted)."""
        media_type = DOCKER_TO_OCI.get(self.media_type, self.media_type)
        return Descriptor(media_type, self.digest, self.size, self.annotations, self.platform)


def __getattr__(name: str):
    # Convenience re-exports resolved lazily so importing vci.oci stays light (no requests).
    lazy = {
        "Layer": "layers",
        "Entry": "layers",
        "write_layer": "layers",
        "tree_entries": "layers",
        "LayerCache": "layers",
        "Image": "image",
        "Index": "image",
        "image_index": "image",
        "ContainerConfig": "image",
        "append_layers": "image",
        "scratch_image": "image",
        "write_layout": "layout",
        "read_layout": "layout",
        "write_tarball": "tarball",
        "RegistryClient": "registry",
        "TransferResult": "transfer",
    }
    if name not in lazy:
        raise AttributeError(f"module 'vci.oci' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"vci.oci.{lazy[name]}"), name)
