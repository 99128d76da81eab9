"""The difference between two releases: their runs' metadata, artifacts, locked requirements, schemas and,
for images, the layers (pure over manifests; ``image_layers`` is the one function that asks a registry)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..oci.registry import RegistryClient
from ..refs import parse_reference

METADATA = ("id", "project", "created", "vci_version")


@dataclass(frozen=True)
class Change:
    """One row of a diff: what it is, its value on each side, and whether it was added, removed or changed."""

    name: str
    before: Any
    after: Any

    @property
    def kind(self) -> str:
        if self.before is None:
            return "added"
        if self.after is None:
            return "removed"
        return "changed" if self.before != self.after else "same"


@dataclass(frozen=True)
class ReleaseDiff:
    """Two releases compared, section by section; each section lists its rows (``same`` ones included)."""

    metadata: list[Change] = field(default_factory=list)
    artifacts: list[Change] = field(default_factory=list)
    requirements: list[Change] = field(default_factory=list)
    schema: list[Change] = field(default_factory=list)
    layers: list[Change] | None = None  # None: no image on either side (local environments), or unreadable
    layers_problem: str | None = None  # why the layers could not be read

    def changed(self, section: str) -> list[Change]:
        return [c for c in getattr(self, section) or [] if c.kind != "same"]


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Rows for every key of two mappings, sorted by key (a key missing on one side is added or removed)."""
    return [Change(k, before.get(k), after.get(k)) for k in sorted(set(before) | set(after))]


def metadata_of(manifest: dict) -> dict[str, Any]:
    meta = {k: manifest.get(k) for k in METADATA}
    meta["model class"] = (manifest.get("model") or {}).get("class")
    meta["python"] = (manifest.get("environment") or {}).get("python")
    return meta


def artifacts_of(manifest: dict) -> dict[str, str]:
    """``{key: "digest (size bytes)"}``: what an artifact is, as one comparable value."""
    found = dict(manifest.get("artifacts") or {})
    if manifest.get("model"):
        found["(model class)"] = manifest["model"]
    return {k: f"{v.get('digest')} ({v.get('size')} bytes, {v.get('kind', 'class')})" for k, v in found.items()}


def locked_of(manifest: dict) -> dict[str, str]:
    """``{name: version}`` of the run's lock, else of its direct pins (runs logged before locks)."""
    lock = manifest.get("lock")
    if isinstance(lock, list) and lock:
        return {str(e.get("name")).lower(): str(e.get("version")) for e in lock if isinstance(e, dict)}
    pins = (p.partition("==") for p in manifest.get("requirements") or [] if isinstance(p, str))
    return {name.strip().lower(): version.strip() for name, _, version in pins}


def schema_of(manifest: dict) -> dict[str, str]:
    """The run's input and output schemas (``schemas``, when the manifest has them) as canonical JSON."""
    schemas = manifest.get("schemas")
    if not isinstance(schemas, dict):
        return {}
    return {k: json.dumps(schemas[k], sort_keys=True) for k in ("input", "output") if schemas.get(k) is not None}


def diff_manifests(before: dict, after: dict) -> ReleaseDiff:
    """The run-level difference of two releases (pure)."""
    return ReleaseDiff(
        metadata=compare(metadata_of(before), metadata_of(after)),
        artifacts=compare(artifacts_of(before), artifacts_of(after)),
        requirements=compare(locked_of(before), locked_of(after)),
        schema=compare(schema_of(before), schema_of(after)),
    )


def layer_rows(before: list[dict], after: list[dict]) -> list[Change]:
    """Layers position by position: ``{digest, size}`` descriptors compared as ``digest (size)``."""
    shown = [[f"{d.get('digest')} ({d.get('size')} bytes)" for d in side] for side in (before, after)]
    before_rows, after_rows = shown
    return [
        Change(f"layer {i + 1}", _at(before_rows, i), _at(after_rows, i))
        for i in range(max(len(before_rows), len(after_rows)))
    ]


def _at(rows: list[str], index: int) -> str | None:
    return rows[index] if index < len(rows) else None


def image_layers(image: str, insecure: bool | None = None) -> list[dict]:
    """The layer descriptors of an image by reference (read from its registry)."""
    ref = parse_reference(image)
    return [dict(layer) for layer in RegistryClient(ref.registry, insecure=insecure).get_image(ref).manifest["layers"]]
