"""``vci package``: a run's image built and written to each requested output, or (``--dry-run``) the plan.

It returns one result for ``--output json``: ``{image, digest, run_id, layers, outputs, reproducible,
manifest}``; the dry run returns each layer, what it holds, and whether it is built and already pushed.
With only ``--emit-dockerfile`` asked for, no image is built (``image`` and ``digest`` are None): the
context needs the dependency directory alone. ``--check-reproducible`` rebuilds the daemonless image
from scratch; it is refused with ``--builder docker`` (the classic builder writes build times into every
image, so there is nothing reproducible to check), and ``--builder auto`` then builds without a daemon.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from ..errors import UsageError
from ..fetch import cache_root
from ..ledger import now_iso
from ..oci.image import Index
from ..oci.layers import LayerCache
from ..oci.registry import RegistryClients
from ..runs import resolve_run
from ..trust import signer_for
from . import Options
from .dockerfile import write_dockerfile
from .image import build, rebuild_with_docker, resolve_base, verify_reproducible
from .outputs import mark_in_registry, push_progress, write_outputs, write_refs_file
from .plan import LAYER_MTIME, plan_layers, python_of
from .signing import sign_pushed

log = logging.getLogger("vci")


def package(
    settings, run, options: Options, *, progress=None, check_reproducible: bool = False, refs_file: str | None = None
) -> dict:
    """Build ``run`` (a Run or a run id) and write the requested outputs (and ``refs_file``)."""
    options = _builder_for(options, check_reproducible)
    run = resolve_run(settings, run)
    run.verify()  # with VCI_TRUSTED_KEYS set, only a run a trusted key signed is built
    signer, started = signer_for(settings), now_iso()  # a bad key is refused before anything is built
    if options.dockerfile and not (options.push or options.layout or options.tar or check_reproducible):
        return _dockerfile_only(run, options, refs_file)
    image, layers = build(run, options, cache_root() / "oci")
    if check_reproducible:
        verify_reproducible(run, options, image, layers)
    rebuilt = rebuild_with_docker(run, options, image)
    if rebuilt:
        image, layers = rebuilt
    default_layout = Path(settings.state_dir) / "images" / (run.project or "model")
    clients = RegistryClients()  # the push's clients sign too
    outputs = write_outputs(image, options, run, default_layout, progress or push_progress(), clients)
    signed = (
        sign_pushed(
            run, image, outputs, options, signer, started=started, cache_dir=cache_root() / "oci", clients=clients
        )
        if signer
        else None
    )
    first = (outputs.get("push") or [{}])[0].get("reference")
    reference = first or f"{outputs.get('layout') or outputs.get('tar')}@{image.digest}"
    if refs_file:
        write_refs_file(refs_file, reference)
    return {
        "image": reference,
        "digest": image.digest,
        "run_id": run.id,
        "layers": layers,
        "outputs": outputs,
        "reproducible": True if check_reproducible else None,
        "manifest": json.loads(image.manifest_bytes),
        "signed": signed,
        **({"platforms": {each.platform: each.digest for each in image.images}} if isinstance(image, Index) else {}),
    }


def _builder_for(options: Options, check_reproducible: bool) -> Options:
    """The builder that can do what was asked: a reproducibility check and an index need the daemonless one."""
    if options.builder == "auto" and len(options.platforms) > 1:
        log.info("--platform %s: an image index is built without a daemon (--builder auto)", options.platform)
        return dataclasses.replace(options, builder="daemonless")
    if not check_reproducible or options.builder == "daemonless":
        return options
    if options.builder == "docker":
        raise UsageError(
            "--check-reproducible checks the daemonless build, and --builder docker asks for the Docker Engine's "
            "(whose classic builder writes build times into every image: it is never reproducible)",
            hint="drop --builder docker (or use --builder daemonless) to check, or drop --check-reproducible",
        )
    log.info("--check-reproducible: building without a daemon (--builder auto)")
    return dataclasses.replace(options, builder="daemonless")


def _dockerfile_only(run, options: Options, refs_file: str | None) -> dict:
    """``--emit-dockerfile`` alone: write the context; build no image."""
    assert options.dockerfile
    if refs_file:
        raise UsageError("--refs-file names an image, and --emit-dockerfile alone builds none", hint="add --push REPO")
    path = str(write_dockerfile(options.dockerfile, run, options))
    return {
        "image": None,
        "digest": None,
        "run_id": run.id,
        "layers": [],
        "outputs": {"dockerfile": path},
        "reproducible": None,
        "manifest": None,
    }


def plan(settings, run, options: Options) -> dict:
    """``--dry-run``: each layer, what it holds, whether it is built (cached) and already in each registry
    (for several platforms: each layer once, with the ``platforms`` whose image holds it)."""
    run = resolve_run(settings, run)
    rows: dict[str, dict] = {}
    spec = None
    for platform in options.platforms:
        spec, platform_rows = _plan_rows(run, dataclasses.replace(options, platform=platform))
        for row in platform_rows:
            rows.setdefault(row["digest"] or row["key"], {**row, "platforms": []})["platforms"].append(platform)
    layers = [
        {k: v for k, v in row.items() if k != "key" and (k != "platforms" or len(options.platforms) > 1)}
        for row in rows.values()
    ]
    for repo in options.push:
        mark_in_registry(layers, repo, options.insecure)
    return {"run_id": run.id, "base": spec, "layers": layers, "push": options.push, "dry_run": True}


def _plan_rows(run, options: Options) -> tuple[str, list[dict]]:
    """The base reference and one row per layer of the image for ``options.platform``."""
    manifest, python = run.manifest, python_of(run.manifest)
    base, spec = resolve_base(options.base, python, options.platform, options.insecure)
    cache = LayerCache(cache_root() / "oci")
    rows = [
        {
            "name": "base",
            "describe": f"{spec} layer {i + 1}",
            "digest": layer.digest,
            "size": layer.size,
            "state": "base",
            "key": layer.digest,
        }
        for i, layer in enumerate(base.layers)
    ]
    for s in plan_layers(manifest, None, python=python, platform=options.platform, cache_dir=cache_root() / "oci"):
        layer = cache.get(s.key, epoch=LAYER_MTIME, level=options.level)
        rows.append(
            {
                "name": s.name,
                "describe": s.describe,
                "digest": layer.digest if layer else None,
                "size": layer.size if layer else None,
                "state": "cached" if layer else "to-build",
                "key": s.key,
            }
        )
    return spec, rows
