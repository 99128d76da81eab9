"""Build a run's image: resolve the base, build the planned layers (cached), assemble the image (pure).

The daemonless build is the default; ``--builder docker`` rebuilds the same context through a Docker
Engine. ``--check-reproducible`` rebuilds every vci layer in a throw-away cache and compares digests.
Several platforms give an image index: one image per platform, each on the base's image for that
platform, with its own dependency layer; the runtime, model and artifact layers are the same blobs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from pathlib import Path

from ..errors import BuildError
from ..modeldir import encode_manifest
from ..oci.image import Image, Index, append_layers, image_index
from ..oci.layers import LayerCache
from ..oci.layout import read_layout
from ..oci.registry import RegistryClient
from ..progress import Progress
from ..refs import parse_reference
from ..runs import Run
from . import Options
from .docker import build_with_docker, docker_available
from .plan import (
    LAYER_MTIME,
    MAX_ENV_MANIFEST,
    build_epoch,
    container_config,
    image_labels,
    layout_base,
    minor_version,
    plan_layers,
    python_of,
)

log = logging.getLogger("vci")


def resolve_base(spec: str | None, python: str, platform: str, insecure: bool | None):
    """``oci:DIR[:tag]`` or a directory -> an OCI layout; anything else is a registry reference."""
    spec = spec or os.environ.get("VCI_BASE_IMAGE") or f"python:{python}-slim"
    layout = layout_base(spec)
    if layout:
        return read_layout(*layout, platform), spec
    ref = parse_reference(spec)
    return RegistryClient(ref.registry, insecure=insecure).get_image(ref, platform), spec


def check_base_platform(base: Image, platform: str, spec: str) -> None:
    """The base must be built for ``platform``: an image of another is no base for it (an index is
    resolved to ``platform`` before this, so a single image is what can disagree)."""
    os_name, arch, *variant = platform.split("/")
    config = base.config
    other_variant = variant and config.get("variant") not in (None, variant[0])
    if (config.get("os"), config.get("architecture")) != (os_name, arch) or other_variant:
        raise BuildError(
            f"base image {spec} is a {base.platform or 'platform-less'} image, not {platform}",
            hint=f"use a base image index with a {platform} image (e.g. python:X.Y-slim), or another --platform",
        )


def check_base_python(base, python: str, spec: str) -> None:
    config = base.config.get("config") or {}
    found = (config.get("Labels") or {}).get("vci.python")
    for item in config.get("Env") or []:
        if item.startswith("PYTHON_VERSION="):
            found = found or item.split("=", 1)[1]
    if found and minor_version(found) != python:
        raise BuildError(
            f"base image {spec} has Python {found}, but the run was logged with Python {python}",
            hint=f"use a Python {python} base (the model pickle needs the same minor version)",
        )


def build(run: Run, options: Options, cache_dir: Path) -> tuple[Image | Index, list[dict]]:
    """The run's image, or for several ``--platform``s its image index, and the layer records vci added
    (for an index, each record once, with the ``platforms`` that hold it)."""
    if len(options.platforms) == 1:
        return build_image(run, options, cache_dir)
    images: list[Image] = []
    records: dict[str, dict] = {}
    for platform in options.platforms:
        image, layers = build_image(run, dataclasses.replace(options, platform=platform), cache_dir)
        images.append(image)
        for layer in layers:
            records.setdefault(layer["digest"], {**layer, "platforms": []})["platforms"].append(platform)
    return image_index(images), list(records.values())


def build_image(run: Run, options: Options, cache_dir: Path) -> tuple[Image, list[dict]]:
    """The run's image and the list of layer records ``{name, digest, size, describe}`` vci added."""
    manifest, python = run.manifest, python_of(run.manifest)
    base, spec = resolve_base(options.base, python, options.platform, options.insecure)
    check_base_platform(base, options.platform, spec)
    check_base_python(base, python, spec)
    manifest_json = encode_manifest(manifest).decode()
    if len(manifest_json) > MAX_ENV_MANIFEST:
        raise BuildError(
            f"the run manifest takes {len(manifest_json)} bytes; images carry at most {MAX_ENV_MANIFEST}",
            hint="log fewer or smaller examples",
        )
    epoch = build_epoch(manifest)
    model_dir = run.model_dir()
    specs = plan_layers(
        manifest, model_dir, python=python, platform=options.platform, cache_dir=cache_dir, store=run.store
    )
    cache = LayerCache(cache_dir)
    layers = []
    for s in specs:
        layer = cache.get(s.key, epoch=LAYER_MTIME, level=options.level)
        if layer is None:
            layer = _build_layer(cache, s, options.level)
        layers.append(layer)
    config = container_config(manifest, manifest_json, image_labels(manifest, run.version, epoch))
    image = append_layers(base, layers, epoch=epoch, config=config, history=[s.describe for s in specs])
    records = [
        {"name": s.name, "digest": layer.digest, "size": layer.size, "describe": s.describe}
        for s, layer in zip(specs, layers, strict=True)
    ]
    return image, records


def _build_layer(cache, spec, level: int):
    """Build one layer with a progress display of the bytes compressed (on a terminal)."""
    log.info("building layer %s", spec.describe)
    entries = spec.entries()
    total = sum(e.source.stat().st_size for e in entries if e.kind == "file")
    with Progress(total, f"compressing {spec.name}") as bar:
        return cache.build(spec.key, entries, epoch=LAYER_MTIME, level=level, progress=bar)


def verify_reproducible(run: Run, options: Options, image: Image | Index, layers: list[dict]) -> None:
    """Rebuild every vci layer (every platform's) from scratch in a throw-away cache; the digests must match."""
    with tempfile.TemporaryDirectory(prefix="vci-repro-") as tmp:
        again, records = build(run, options, Path(tmp))
    if again.digest != image.digest:
        differ = [
            f"{a['name']} ({a['digest'][:19]} then {b['digest'][:19]})"
            for a, b in zip(layers, records, strict=True)
            if a["digest"] != b["digest"]
        ]
        raise BuildError(
            f"the image is not reproducible: {image.digest} then {again.digest}; "
            f"layers that differ: {', '.join(differ) or 'none (the config differs)'}",
            hint="set SOURCE_DATE_EPOCH, and make sure the requirements are pinned",
        )


def rebuild_with_docker(run: Run, options: Options, image: Image | Index) -> tuple[Image, list[dict]] | None:
    """``--builder docker|auto``: the image the Docker Engine builds and its layer records; else ``None``
    (and for an index: a daemon builds its own platform only)."""
    if isinstance(image, Index) or not _use_docker(options.builder):
        return None
    built = build_with_docker(run, options, image)
    return built, [
        {"name": f"docker layer {i + 1}", "digest": layer.digest, "size": layer.size, "describe": "docker build"}
        for i, layer in enumerate(built.layers)
    ]


def _use_docker(builder: str) -> bool:
    if builder == "daemonless":
        return False
    if docker_available():
        return True
    if builder == "docker":
        raise BuildError(
            "--builder docker: no Docker Engine is reachable (DOCKER_HOST or /var/run/docker.sock)",
            hint="start dockerd, or use --builder daemonless (the default) or auto",
        )
    log.warning("no Docker Engine reachable: building without a daemon")
    return False
