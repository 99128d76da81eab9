"""``vci package``: a run's image built and written to each requested output, or (``--dry-run``) the plan.

It returns one result for ``--output json``: ``{image, digest, run_id, layers, outputs, reproducible,
manifest}``; the dry run returns each layer, what it holds, and whether it is built and already pushed.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..fetch import cache_root
from ..oci.layers import LayerCache
from ..runs import resolve_run
from . import Options
from .image import build_image, rebuild_with_docker, resolve_base, verify_reproducible
from .outputs import mark_in_registry, push_progress, write_outputs, write_refs_file
from .plan import LAYER_MTIME, plan_layers, python_of


def package(
    settings, run, options: Options, *, progress=None, check_reproducible: bool = False, refs_file: str | None = None
) -> dict:
    """Build ``run`` (a Run or a run id) and write the requested outputs (and ``refs_file``)."""
    run = resolve_run(settings, run)
    image, layers = build_image(run, options, cache_root() / "oci")
    if check_reproducible:
        verify_reproducible(run, options, image, layers)
    rebuilt = rebuild_with_docker(run, options, image)
    if rebuilt:
        image, layers = rebuilt
    default_layout = Path(settings.state_dir) / "images" / (run.project or "model")
    outputs = write_outputs(image, options, run, default_layout, progress or push_progress())
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
    }


def plan(settings, run, options: Options) -> dict:
    """``--dry-run``: each layer, what it holds, whether it is built (cached) and already in each registry."""
    run = resolve_run(settings, run)
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
            }
        )
    for repo in options.push:
        mark_in_registry(rows, repo, options.insecure)
    return {"run_id": run.id, "base": spec, "layers": rows, "push": options.push, "dry_run": True}
