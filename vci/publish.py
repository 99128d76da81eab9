"""Build a run's image and publish it: push to a registry, write an OCI layout, a docker tarball or a Dockerfile.

This is where packaging is wired (ko's build -> publish): resolve the base, build the layers (cached),
assemble the image (pure), then write each requested output. It returns one result for ``--output json``:
``{image, digest, layers, outputs}``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BuildError
from .package import (LAYER_MTIME, MAX_ENV_MANIFEST, build_epoch, container_config, image_labels, plan_layers, python_of)

log = logging.getLogger("vci")


@dataclass
class Options:
    """What ``vci package`` was asked for."""

    base: str | None = None
    push: list[str] = field(default_factory=list)
    layout: str | None = None
    tar: str | None = None
    dockerfile: str | None = None
    insecure: bool | None = None
    platform: str = "linux/amd64"
    level: int = 6
    tag: str | None = None
    builder: str = "daemonless"


def resolve_base(spec: str | None, python: str, platform: str, insecure: bool | None):
    """``oci:DIR[:tag]`` or a directory -> an OCI layout; anything else is a registry reference."""
    import os
    from .oci.layout import read_layout
    spec = spec or os.environ.get("VCI_BASE_IMAGE") or f"python:{python}-slim"
    if spec.startswith("oci:") or Path(spec).is_dir():
        path, _, tag = spec.removeprefix("oci:").partition(":")
        return read_layout(path, tag or None, platform), spec
    from .oci.registry import RegistryClient
    from .refs import parse_reference
    ref = parse_reference(spec)
    return RegistryClient(ref.registry, insecure=insecure).get_image(ref, platform), spec


def check_base_python(base, python: str, spec: str) -> None:
    config = base.config.get("config") or {}
    found = (config.get("Labels") or {}).get("vci.python")
    for item in config.get("Env") or []:
        if item.startswith("PYTHON_VERSION="):
            found = found or item.split("=", 1)[1]
    if found and ".".join(found.split(".")[:2]) != python:
        raise BuildError(f"base image {spec} has Python {found}, but the run was logged with Python {python}",
                         hint=f"use a Python {python} base (the model pickle needs the same minor version)")


def build_image(run, options: Options, cache_dir: Path):
    """The run's image and the list of layer records ``{name, digest, size, describe}`` vci added."""
    from .modeldir import encode_manifest
    from .oci.image import append_layers
    from .oci.layers import LayerCache
    manifest, python = run.manifest, python_of(run.manifest)
    base, spec = resolve_base(options.base, python, options.platform, options.insecure)
    check_base_python(base, python, spec)
    manifest_json = encode_manifest(manifest).decode()
    if len(manifest_json) > MAX_ENV_MANIFEST:
        raise BuildError(f"the run manifest takes {len(manifest_json)} bytes; images carry at most "
                         f"{MAX_ENV_MANIFEST}", hint="log fewer or smaller examples")
    epoch = build_epoch(manifest)
    specs = plan_layers(manifest, run.model_dir(), python=python, platform=options.platform, cache_dir=cache_dir)
    cache = LayerCache(cache_dir)
    layers = []
    for s in specs:
        layer = cache.get(s.key, epoch=LAYER_MTIME, level=options.level)
        if layer is None:
            layer = _build_layer(cache, s, options.level)
        layers.append(layer)
    config = container_config(manifest, manifest_json, image_labels(manifest, run.version, epoch))
    image = append_layers(base, layers, epoch=epoch, config=config, history=[s.describe for s in specs])
    records = [{"name": s.name, "digest": l.digest, "size": l.size, "describe": s.describe}
               for s, l in zip(specs, layers)]
    return image, records


def _build_layer(cache, spec, level: int):
    """Build one layer with a progress display of the bytes compressed (on a terminal)."""
    from .progress import Progress
    log.info("building layer %s", spec.describe)
    entries = spec.entries()
    total = sum(e.source.stat().st_size for e in entries if e.kind == "file")
    bar = Progress(total, f"compressing {spec.name}")
    try:
        return cache.build(spec.key, entries, epoch=LAYER_MTIME, level=level, progress=bar)
    finally:
        bar.close()


def write_outputs(image, options: Options, run, default_layout: Path, progress=None) -> dict:
    """Write every requested output; with none requested, an OCI layout under the local state directory."""
    from .oci.layout import write_layout
    outputs: dict[str, object] = {}
    tag = options.tag or run.id
    if options.layout or not (options.push or options.tar or options.dockerfile):
        directory = Path(options.layout) if options.layout else default_layout
        _need_local_layers(image)
        write_layout(directory, image, tag)
        outputs["layout"] = f"{directory}:{tag}"
    if options.tar:
        from .oci.tarball import write_tarball
        _need_local_layers(image)
        write_tarball(options.tar, image, [f"vci/{run.project or 'model'}:{tag}"])
        outputs["tar"] = options.tar
    if options.dockerfile:
        from .dockerfile import write_dockerfile
        outputs["dockerfile"] = str(write_dockerfile(options.dockerfile, run, options.base, image))
    pushed = [push_to(image, repo, tag, options.insecure, progress) for repo in options.push]
    if pushed:
        outputs["push"] = pushed
    return outputs


def push_to(image, repository: str, tag: str, insecure: bool | None, progress=None) -> dict:
    from .oci.registry import RegistryClient
    from .oci.transfer import push_image
    from .refs import split_repository
    registry, repo = split_repository(repository)
    result = push_image(RegistryClient(registry, insecure=insecure), image, repo, tag=tag, progress=progress)
    return {"reference": f"{registry}/{repo}@{image.digest}", "tag": f"{registry}/{repo}:{tag}",
            **{k: v for k, v in result.to_json().items() if k != "reference"}}


def _need_local_layers(image) -> None:
    remote = [layer.digest for layer in image.layers if layer.path is None]
    if remote:
        raise BuildError(f"{len(remote)} base layers live only in their registry; --layout and --tar need them",
                         hint="use an OCI layout as --base (skopeo copy docker://BASE oci:DIR:tag)")


def package(settings, target, options: Options, *, progress=None, check_reproducible: bool = False) -> dict:
    """``vci package``: build a run's image and write the requested outputs."""
    from .deploy import resolve_run
    from .fetch import cache_root
    run = resolve_run(settings, target)
    image, layers = build_image(run, options, cache_root() / "oci")
    if check_reproducible:
        _check_reproducible(run, options, image, layers)
    if _use_docker(options.builder):
        from .oci.docker import build_with_docker
        image = build_with_docker(run, options, image)
        layers = [{"name": f"docker layer {i + 1}", "digest": l.digest, "size": l.size, "describe": "docker build"}
                  for i, l in enumerate(image.layers)]
    default_layout = Path(settings.state_dir) / "images" / (run.project or "model")
    outputs = write_outputs(image, options, run, default_layout, progress or _push_progress())
    first = (outputs.get("push") or [{}])[0].get("reference")
    return {"image": first or f"{outputs.get('layout') or outputs.get('tar')}@{image.digest}",
            "digest": image.digest, "run_id": run.id, "layers": layers, "outputs": outputs,
            "reproducible": True if check_reproducible else None, "manifest": json.loads(image.manifest_bytes)}


def _check_reproducible(run, options: Options, image, layers: list[dict]) -> None:
    """Rebuild every vci layer from scratch in a throw-away cache; the digests must match."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="vci-repro-") as tmp:
        again, records = build_image(run, options, Path(tmp))
    if again.digest != image.digest:
        differ = [f"{a['name']} ({a['digest'][:19]} then {b['digest'][:19]})"
                  for a, b in zip(layers, records) if a["digest"] != b["digest"]]
        raise BuildError(f"the image is not reproducible: {image.digest} then {again.digest}; "
                         f"layers that differ: {', '.join(differ) or 'none (the config differs)'}",
                         hint="set SOURCE_DATE_EPOCH, and make sure the requirements are pinned")


def _use_docker(builder: str) -> bool:
    if builder == "daemonless":
        return False
    from .oci.docker import docker_available
    if docker_available():
        return True
    if builder == "docker":
        raise BuildError("--builder docker: no Docker Engine is reachable (DOCKER_HOST or /var/run/docker.sock)",
                         hint="start dockerd, or use --builder daemonless (the default) or auto")
    log.warning("no Docker Engine reachable: building without a daemon")
    return False


def _push_progress():
    """Per-layer push outcomes on a terminal: uploaded, mounted or skipped (already there)."""
    import os
    import sys
    if os.environ.get("VCI_PROGRESS") != "1" and (os.environ.get("VCI_PROGRESS") == "0" or not sys.stderr.isatty()
                                                  or os.environ.get("CI")):
        return None

    def report(outcome: str, digest: str, size: int) -> None:
        print(f"  {outcome:<9} {digest[:19]} {size / (1 << 20):8.1f} MiB", file=sys.stderr)
    return report


def plan(settings, target, options: Options) -> dict:
    """``--dry-run``: each layer, what it holds, whether it is built (cached) and already in each registry."""
    from .deploy import resolve_run
    from .fetch import cache_root
    from .oci.layers import LayerCache
    run = resolve_run(settings, target)
    manifest, python = run.manifest, python_of(run.manifest)
    base, spec = resolve_base(options.base, python, options.platform, options.insecure)
    cache = LayerCache(cache_root() / "oci")
    rows = [{"name": "base", "describe": f"{spec} layer {i + 1}", "digest": l.digest, "size": l.size,
             "state": "base"} for i, l in enumerate(base.layers)]
    for s in plan_layers(manifest, None, python=python, platform=options.platform, cache_dir=cache_root() / "oci"):
        layer = cache.get(s.key, epoch=LAYER_MTIME, level=options.level)
        rows.append({"name": s.name, "describe": s.describe, "digest": layer.digest if layer else None,
                     "size": layer.size if layer else None, "state": "cached" if layer else "to-build"})
    for repo in options.push:
        _mark_in_registry(rows, repo, options.insecure)
    return {"run_id": run.id, "base": spec, "layers": rows, "push": options.push, "dry_run": True}


def _mark_in_registry(rows: list[dict], repository: str, insecure: bool | None) -> None:
    from .oci.registry import RegistryClient
    from .refs import split_repository
    registry, repo = split_repository(repository)
    client = RegistryClient(registry, insecure=insecure)
    for row in rows:
        if row["digest"]:
            row.setdefault("in_registry", {})[repository] = client.has_blob(repo, row["digest"])
            if row["state"] != "base" and row["in_registry"][repository]:
                row["state"] = "pushed"
