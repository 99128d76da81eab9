"""Fetch a committed run from its store into a local, verified model directory (cached by version)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .digests import hex_of, verify_file
from .errors import IntegrityError
from .files import cache_root, write_replacing  # cache_root: fetch's name for it, kept
from .modeldir import (
    MANIFEST,
    blob_path,
    blob_records,
    encode_manifest,
    manifest_digest,
    remove_unless_in_use,
)
from .progress import Progress, format_bytes, parse_bytes
from .store.sigterm import sigterm_raises

log = logging.getLogger("vci")
DEFAULT_BUDGET = "20GiB"


def fetch_model_dir(store, manifest: dict, dest: str | Path | None = None) -> Path:
    """Make ``dest`` (default: the cache's directory for this model version) a model directory of
    ``manifest`` whose every blob has been verified now, and return it.

    The cache is trusted with nothing: each blob it holds already is hashed against ``manifest`` (the
    store's, not the directory's own copy) and fetched again when it does not match (about 0.55 s per
    GiB here); missing blobs are downloaded, each verified before it is renamed into place; the
    manifest is written last, so an interrupted fetch is finished by the next call."""
    root = Path(dest) if dest else cache_root() / "models" / hex_of(manifest_digest(manifest))
    records = list({r["digest"]: r for r in blob_records(manifest)}.values())
    stale = [r for r in records if not _cached(blob_path(root, r["digest"]), r)]
    what = f"fetching run {manifest['id']}"
    with sigterm_raises(what):  # a SIGTERM leaves no partial file behind
        with Progress(sum(r["size"] for r in stale), what) as bar:
            for rec in stale:
                store.get_blob(rec["digest"], blob_path(root, rec["digest"]), progress=bar)
        canonical = encode_manifest(manifest)
        path = root / MANIFEST
        if not (path.is_file() and not path.is_symlink() and path.read_bytes() == canonical):
            write_replacing(path, canonical)
    if dest is None:
        os.utime(path)  # its last use, for trimming
        trim_model_cache(root.parent, cache_budget(), keep=root)
    return root


def cache_budget() -> int:
    """``VCI_CACHE_MAX_BYTES`` (e.g. 20GiB; 0: no bound), else 20 GiB: the model cache's bound."""
    return parse_bytes(os.environ.get("VCI_CACHE_MAX_BYTES") or DEFAULT_BUDGET, "VCI_CACHE_MAX_BYTES")


def trim_model_cache(models: Path, budget: int, keep: Path) -> list[Path]:
    """Remove the least recently used model directories until the cache fits ``budget`` bytes; never
    ``keep`` (just fetched) nor one a server holds. Returns what was removed."""
    if budget <= 0:
        return []
    entries = [(_last_used(d), _size(d), d) for d in models.iterdir() if d.is_dir() and d != keep]
    total = sum(size for _, size, _ in entries) + _size(keep)
    removed = []
    for _, size, folder in sorted(entries):
        if total <= budget:
            break
        if remove_unless_in_use(folder):
            total -= size
            removed.append(folder)
    if removed:
        log.info("model cache over %s: removed %d least recently used runs", format_bytes(budget), len(removed))
    return removed


def _last_used(folder: Path) -> float:
    try:
        return (folder / MANIFEST).stat().st_mtime
    except OSError:
        return 0.0  # an unfinished fetch: the first to go


def _size(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _cached(path: Path, rec: dict) -> bool:
    """Whether the cache holds the blob of ``rec`` at ``path`` as a file with exactly its bytes."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        verify_file(path, rec["digest"], rec["size"])
    except IntegrityError:
        log.warning("%s in the cache does not match its digest; fetching it again", path)
        return False
    return True
