"""A store that writes nothing: what a run would send, counted against what the real store already holds.

``vci log --dry-run`` logs through it: every check of a run (its files, model class, requirements,
examples) runs as for a real one, reads go to the real store, and each write is only recorded.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..digests import sha256_bytes, sha256_file
from .base import BlobInfo, Descriptor, Progress, Store, Upload


class DryRunStore:
    """Wraps ``store``; ``planned`` maps each blob a real run would upload to its size (a blob the store
    holds with its size counts as present: a dry run reads no bytes back)."""

    def __init__(self, store: Store):
        self.store = store
        self.url = store.url
        self.verify_below = store.verify_below
        self.planned: dict[str, int] = {}
        self.documents: dict[str, dict] = {}

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        return digest in self.planned or self.store.has_blob(digest, size)

    def _plan(self, digest: str, size: int) -> Descriptor:
        if self.has_blob(digest, size):
            return Descriptor(digest, size, 0)
        self.planned[digest] = size
        return Descriptor(digest, size, size)  # ``sent``: what a real run would send

    def put_blob(
        self, path: str | Path, *, digest: str | None = None, size: int | None = None, progress: Progress | None = None
    ) -> Descriptor:
        if digest is None:
            digest, size = sha256_file(path)
        return self._plan(digest, size if size is not None else os.path.getsize(path))

    def put_bytes(self, data: bytes) -> Descriptor:
        return self._plan(sha256_bytes(data), len(data))

    def get_blob(self, digest: str, dest: str | Path, *, progress: Progress | None = None) -> Path:
        return self.store.get_blob(digest, dest, progress=progress)

    def read_blob(self, digest: str) -> bytes:
        return self.store.read_blob(digest)

    def put_json_new(self, key: str, doc: dict) -> None:
        self.documents[key] = doc

    def put_json(self, key: str, doc: dict) -> None:
        self.documents[key] = doc

    def get_json(self, key: str) -> dict:
        return self.documents[key] if key in self.documents else self.store.get_json(key)

    def list_keys(self, prefix: str, *, after: str | None = None, limit: int | None = None) -> list[str]:
        return self.store.list_keys(prefix, after=after, limit=limit)

    def blobs(self) -> list[BlobInfo]:
        return self.store.blobs()

    def touch_blob(self, digest: str) -> None:
        """Nothing: a dry run marks nothing used."""

    def delete_blob(self, digest: str, unused_since: float) -> bool:
        return False  # a dry run deletes nothing

    def incomplete_uploads(self) -> list[Upload]:
        return self.store.incomplete_uploads()

    def remove_upload(self, upload: Upload) -> None:
        """Nothing: a dry run removes nothing."""
