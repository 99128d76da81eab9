"""Pure image assembly: a base image plus new layers and a container config give a new OCI image.

No I/O happens here: base images come from ``layout`` or ``registry`` as bytes, layers from ``layers``.
Output is canonical JSON, so the same base, layers, config and epoch always give the same digest. Docker
schema2 bases are accepted and their media types converted to OCI names (the blobs are identical).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..digests import sha256_bytes
from ..errors import BuildError
from . import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
)
from .layers import Layer

DEFAULT_PLATFORM = "linux/amd64"
CREATED_LABEL = "org.opencontainers.image.created"
_KEEP_CONFIG_KEYS = (
    "architecture",
    "os",
    "os.version",
    "os.features",
    "variant",
    "config",
    "rootfs",
    "history",
    "author",
)


class _Manifested:
    """What an image and an index share: their manifest's bytes, hence its JSON, digest and descriptor."""

    manifest_bytes: bytes

    @property
    def media_type(self) -> str:
        raise NotImplementedError

    @property
    def manifest(self) -> dict:
        return json.loads(self.manifest_bytes)

    @property
    def digest(self) -> str:
        return sha256_bytes(self.manifest_bytes)

    def descriptor(self, **annotations: str) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.manifest_bytes), dict(annotations))


@dataclass(frozen=True)
class Image(_Manifested):
    """An image as the registry sees it: manifest bytes, config bytes, and its layers in order."""

    manifest_bytes: bytes
    config_bytes: bytes
    layers: tuple[Layer, ...]

    @property
    def config(self) -> dict:
        return json.loads(self.config_bytes)

    @property
    def media_type(self) -> str:
        return self.manifest.get("mediaType", OCI_MANIFEST)

    @property
    def config_descriptor(self) -> Descriptor:
        return Descriptor.from_json(self.manifest["config"])

    @property
    def platform(self) -> str:
        """``os/arch[/variant]`` as its config says."""
        config = self.config
        return "/".join(filter(None, [config.get("os"), config.get("architecture"), config.get("variant")]))


@dataclass(frozen=True)
class Index(_Manifested):
    """An image index as the registry sees it: its bytes and one image per platform, in its order."""

    manifest_bytes: bytes
    images: tuple[Image, ...]

    @property
    def media_type(self) -> str:
        return OCI_INDEX

    @property
    def layers(self) -> tuple[Layer, ...]:
        """Every image's layers, each blob once (a layer the platforms share is one blob)."""
        return tuple({layer.digest: layer for image in self.images for layer in image.layers}.values())


def images_of(image: Image | Index) -> tuple[Image, ...]:
    """The images an image or an index holds (an image: itself)."""
    return image.images if isinstance(image, Index) else (image,)


def image_index(images: list[Image]) -> Index:
    """An OCI image index over ``images``, each entry naming its platform (from the image's config)."""
    platforms = [image.platform for image in images]
    if not images or len(set(platforms)) != len(platforms):
        raise BuildError(f"an image index needs one image per platform, got: {', '.join(platforms) or 'none'}")
    entries = []
    for image in images:
        os_name, arch, variant = _split_platform(image.platform)
        platform = {"architecture": arch, "os": os_name, **({"variant": variant} if variant else {})}
        entries.append({**image.descriptor().to_json(), "platform": platform})
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    return Index(canonical_json(index), tuple(images))


@dataclass(frozen=True)
class ContainerConfig:
    """What runs: the parts of the OCI config's ``config`` object vci sets (None keeps the base's)."""

    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    exposed_ports: list[str] = field(default_factory=list)
    user: str = "65532"
    workdir: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def image_from_parts(manifest_bytes: bytes, config_bytes: bytes, locate=None, origin: str | None = None) -> Image:
    """An Image from fetched bytes; ``locate(digest)`` gives a layer's local path or None."""
    manifest = json.loads(manifest_bytes)
    if manifest.get("mediaType", OCI_MANIFEST) not in MANIFEST_TYPES or "layers" not in manifest:
        raise BuildError(
            f"not an image manifest: {manifest.get('mediaType')}",
            hint="resolve an index to one platform first",
        )
    config = json.loads(config_bytes)
    if sha256_bytes(config_bytes) != manifest["config"]["digest"]:
        raise BuildError("image config does not match the digest its manifest records")
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(manifest["layers"]):
        raise BuildError(f"image config lists {len(diff_ids)} diff_ids for {len(manifest['layers'])} layers")
    layers = tuple(
        Layer(Descriptor.from_json(d), diff_id, locate(d["digest"]) if locate else None, origin)
        for d, diff_id in zip(manifest["layers"], diff_ids, strict=True)
    )
    return Image(manifest_bytes, config_bytes, layers)


def scratch_image(platform: str = DEFAULT_PLATFORM) -> Image:
    """An empty base (no layers) for ``platform``, like ``FROM scratch``."""
    os_name, arch, variant = _split_platform(platform)
    config = {"architecture": arch, "os": os_name, "config": {}, "rootfs": {"type": "layers", "diff_ids": []}}
    if variant:
        config["variant"] = variant
    config_bytes = canonical_json(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "layers": [],
        "config": Descriptor(OCI_CONFIG, sha256_bytes(config_bytes), len(config_bytes)).to_json(),
    }
    return Image(canonical_json(manifest), config_bytes, ())


def append_layers(
    base: Image,
    layers: list[Layer],
    *,
    epoch: int,
    config: ContainerConfig | None = None,
    history: list[str] | None = None,
    annotations: dict[str, str] | None = None,
) -> Image:
    """A new OCI image: ``base``'s layers then ``layers``, its config updated, created at ``epoch``."""
    if history is not None and len(history) != len(layers):
        raise BuildError(f"{len(history)} history comments for {len(layers)} layers")
    created = iso_time(epoch)
    new_config = _new_config(base.config, layers, created, config or ContainerConfig(), history)
    config_bytes = canonical_json(new_config)
    all_layers = tuple(base.layers) + tuple(layers)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": Descriptor(OCI_CONFIG, sha256_bytes(config_bytes), len(config_bytes)).to_json(),
        "layers": [layer.descriptor.as_oci().to_json() for layer in all_layers],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    return Image(canonical_json(manifest), config_bytes, all_layers)


def _new_config(
    base: dict, layers: list[Layer], created: str, runtime: ContainerConfig, history: list[str] | None
) -> dict:
    config = {k: base[k] for k in _KEEP_CONFIG_KEYS if k in base}
    config["created"] = created
    config["rootfs"] = {
        "type": "layers",
        "diff_ids": list(base.get("rootfs", {}).get("diff_ids", [])) + [layer.diff_id for layer in layers],
    }
    comments = history or [f"vci layer {i + 1}" for i in range(len(layers))]
    config["history"] = list(base.get("history", [])) + [
        {"created": created, "created_by": "vci", "comment": c} for c in comments
    ]
    config["config"] = _container_config(dict(base.get("config") or {}), runtime, created)
    return config


def _container_config(inner: dict, runtime: ContainerConfig, created: str) -> dict:
    env = dict(item.split("=", 1) for item in inner.get("Env") or [] if "=" in item)
    env.update(runtime.env)
    inner["Env"] = [f"{k}={v}" for k, v in env.items()]
    if runtime.entrypoint is not None:
        inner["Entrypoint"] = list(runtime.entrypoint)
        inner.pop("Cmd", None)
    if runtime.cmd is not None:
        inner["Cmd"] = list(runtime.cmd)
    ports = dict(inner.get("ExposedPorts") or {})
    ports.update({_port(p): {} for p in runtime.exposed_ports})
    if ports:
        inner["ExposedPorts"] = ports
    inner["User"] = runtime.user
    if runtime.workdir is not None:
        inner["WorkingDir"] = runtime.workdir
    inner["Labels"] = {**(inner.get("Labels") or {}), **runtime.labels, CREATED_LABEL: created}
    return inner


def _port(port) -> str:
    text = str(port)
    return text if "/" in text else f"{text}/tcp"


def iso_time(epoch: int) -> str:
    return datetime.fromtimestamp(int(epoch), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def select_manifest(index: dict, platform: str = DEFAULT_PLATFORM) -> Descriptor:
    """The descriptor in an image index for ``platform`` (``os/arch[/variant]``)."""
    if index.get("mediaType") not in INDEX_TYPES and "manifests" not in index:
        raise BuildError("not an image index")
    os_name, arch, variant = _split_platform(platform)
    available = []
    for entry in index.get("manifests", []):
        p = entry.get("platform") or {}
        available.append("/".join(filter(None, [p.get("os"), p.get("architecture"), p.get("variant")])))
        if p.get("os") == os_name and p.get("architecture") == arch and (not variant or p.get("variant") == variant):
            return Descriptor.from_json(entry)
    raise BuildError(
        f"the base image has no {platform} manifest (it has: {', '.join(available) or 'none'})",
        hint="choose a base image built for this platform, or pass another --platform",
    )


def _split_platform(platform: str) -> tuple[str, str, str | None]:
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise BuildError(f"bad platform {platform!r}", hint="expected os/arch[/variant], e.g. linux/amd64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None
