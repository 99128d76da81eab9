"""Fetch a committed run from its store into a local, verified model directory (cached by version)."""

from __future__ import annotations

import os
from pathlib import Path

from .digests import hex_of
from .errors import ConfigError
from .files import write_replacing
from .modeldir import (
    MANIFEST,
    blob_path,
    blob_records,
    encode_manifest,
    manifest_digest,
)
from .progress import Progress


def cache_root() -> Path:
    """``VCI_CACHE_DIR``, else ``$XDG_CACHE_HOME/vci``, else ``~/.cache/vci``."""
    if os.environ.get("VCI_CACHE_DIR"):
        root, source = Path(os.environ["VCI_CACHE_DIR"]), "VCI_CACHE_DIR"
    else:
        root, source = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vci", "the cache"
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{source} {root} is a file, not a directory", hint="point VCI_CACHE_DIR at a directory")
    return root


def fetch_model_dir(store, manifest: dict, dest: str | Path | None = None) -> Path:
    """Download every blob of ``manifest`` (each verified on arrival), then write the manifest last.

    A directory whose manifest exists is complete: blobs are written before it, each renamed into
    place only after its digest matched, so an interrupted fetch is finished by the next call.
    """
    digest = manifest_digest(manifest)
    root = Path(dest) if dest else cache_root() / "models" / hex_of(digest)
    if (root / MANIFEST).is_file():
        return root
    records = [r for r in blob_records(manifest) if not blob_path(root, r["digest"]).is_file()]
    with Progress(sum(r["size"] for r in records), f"fetching run {manifest['id']}") as bar:
        for rec in records:
            store.get_blob(rec["digest"], blob_path(root, rec["digest"]), progress=bar)
    write_replacing(root / MANIFEST, encode_manifest(manifest))
    return root
