"""Removing what killed writers left in a store: open multipart uploads on S3, temporary files in a local store.

A ``vci log`` stopped by SIGTERM or Ctrl-C cleans up after itself (see ``vci.store.sigterm``); one
killed outright (SIGKILL, a lost machine, the OOM killer) cannot. What it left is found here by age:
uploads that started more than ``older_than`` seconds ago (a day by default, far longer than any
upload takes) are no longer being written.

Blobs no committed run names are found the same way: only those unused (neither written nor reused by a
put that skipped them: stores mark that) for ``older_than``, so that a ``vci log`` in progress, whose
manifest is not written yet, keeps what it uploaded or reuses. The runs are read after the blobs are
listed, so a run committed meanwhile counts, and each blob's time is checked again just before it goes.
"""

from __future__ import annotations

import time

from ..errors import IntegrityError, UsageError
from ..modeldir import blob_records, manifest_problem
from .base import BlobInfo, Store, Upload

DEFAULT_AGE = 24 * 3600.0


def incomplete_uploads(store: Store, older_than: float = DEFAULT_AGE, *, remove: bool = False) -> list[Upload]:
    """The unfinished writes in ``store`` older than ``older_than`` seconds; removed too with ``remove``."""
    if older_than < 0:
        raise UsageError(f"the age bound must not be negative: {older_than}", hint="e.g. --older-than 24h")
    cutoff = time.time() - older_than
    found = [u for u in store.incomplete_uploads() if u.started <= cutoff]
    if remove:
        for upload in found:
            store.remove_upload(upload)
    return found


def unreferenced_blobs(store: Store, older_than: float = DEFAULT_AGE, *, remove: bool = False) -> list[BlobInfo]:
    """Blobs no committed run names and unused for ``older_than`` seconds; deleted too with ``remove``
    (each only if still unused then)."""
    if older_than < 0:
        raise UsageError(f"the age bound must not be negative: {older_than}", hint="e.g. --older-than 24h")
    cutoff = time.time() - older_than
    listed = [b for b in store.blobs() if b.used <= cutoff]
    named = referenced_digests(store)  # after the listing: a run committed meanwhile is counted
    found = [b for b in listed if b.digest not in named]
    if remove:
        found = [b for b in found if store.delete_blob(b.digest, cutoff)]
    return found


def referenced_digests(store: Store) -> set[str]:
    """Every blob digest a committed run's manifest names; a manifest that cannot be read stops the
    collection (what it names is unknown, so nothing could be removed safely)."""
    named: set[str] = set()
    for key in store.list_keys("runs/"):
        if not key.endswith(".json") or key.count("/") != 1:
            continue
        try:
            manifest = store.get_json(key)
            problem = manifest_problem(manifest)
        except IntegrityError as exc:
            problem = str(exc)
        if problem:
            raise IntegrityError(
                f"{key} in {store.url} cannot be read ({problem}): the blobs it names are unknown, nothing was removed",
                hint="repair or remove that run's manifest, then collect again",
            )
        named.update(record["digest"] for record in blob_records(manifest))
    return named
