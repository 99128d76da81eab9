"""The embedded default store: a directory (``./.vci``) of content-addressed blobs and JSON documents."""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

from ..digests import check_digest, sha256_bytes, sha256_file
from ..errors import ConfigError, ConflictError, IntegrityError, NotFoundError, StoreError
from ..files import copy_chunks, file_chunks, replacing, write_new, write_replacing
from .base import Descriptor, Progress, blob_key, corrupted_blob


class LocalStore:
    """Blobs are written to ``tmp/`` first and renamed into place, so a partial blob is never visible."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(
                f"the store {self.root} is a file, not a directory",
                hint="point --store / VCI_STORE at a directory (created when missing) or s3://bucket/prefix",
            )

    def __repr__(self) -> str:
        return f"LocalStore({self.url!r})"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise StoreError(f"store key {key!r} escapes the store directory")
        return path

    def _tmp(self) -> Path:
        tmp = self.root / "tmp"
        try:
            tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot write to the store at {self.root}: {exc.strerror}",
                hint="check the path and its permissions, or set VCI_STORE",
            ) from exc
        return tmp

    def has_blob(self, digest: str) -> bool:
        return self._path(blob_key(digest)).is_file()

    def put_blob(self, path, *, digest=None, size=None, progress: Progress | None = None) -> Descriptor:
        if digest is None:
            digest, size = sha256_file(path)  # first, so that an unchanged file is not copied again
        if self.has_blob(check_digest(digest)):
            return Descriptor(digest, size if size is not None else os.path.getsize(path), 0)

        def changed(read: str) -> IntegrityError:
            return IntegrityError(f"{path} changed while it was stored: expected {digest}, read {read}")

        with open(path, "rb") as src, self._new_blob(digest, changed) as out:
            written = copy_chunks(file_chunks(src), out, progress)
        return Descriptor(digest, written, written)

    def put_bytes(self, data: bytes) -> Descriptor:
        digest = sha256_bytes(data)
        if self.has_blob(digest):
            return Descriptor(digest, len(data), 0)
        with self._new_blob(digest) as out:
            out.write(data)
        return Descriptor(digest, len(data), len(data))

    def _new_blob(self, digest: str, mismatch=None):
        """A blob's file, staged in ``tmp/``, checked against ``digest``, then read-only in its place."""
        final = self._path(blob_key(digest))
        final.parent.mkdir(parents=True, exist_ok=True)
        return replacing(final, digest=digest, mismatch=mismatch, mode=0o444, within=self._tmp())

    def get_blob(self, digest, dest, *, progress: Progress | None = None) -> Path:
        src = self._path(blob_key(check_digest(digest)))
        if not src.is_file():
            raise NotFoundError(f"blob {digest} is not in the store {self.url}")
        corrupted = partial(corrupted_blob, self.url, digest)
        with open(src, "rb") as f, replacing(dest, digest=digest, mismatch=corrupted) as out:
            copy_chunks(file_chunks(f), out, progress)
        return Path(dest)

    def read_blob(self, digest: str) -> bytes:
        src = self._path(blob_key(check_digest(digest)))
        try:
            data = src.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} is not in the store {self.url}") from None
        if sha256_bytes(data) != digest:
            raise corrupted_blob(self.url, digest, sha256_bytes(data))
        return data

    def put_json_new(self, key: str, doc: dict) -> None:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_new(final, _encode(doc), within=self._tmp())
        except FileExistsError:
            raise ConflictError(f"{key} already exists in the store {self.url}") from None

    def put_json(self, key: str, doc: dict) -> None:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        write_replacing(final, _encode(doc), within=self._tmp())

    def get_json(self, key: str) -> dict:
        try:
            return json.loads(self._path(key).read_text())
        except FileNotFoundError:
            raise NotFoundError(f"{key} is not in the store {self.url}") from None
        except ValueError as exc:
            raise StoreError(f"{key} in the store {self.url} is not valid JSON: {exc}") from exc

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix.strip("/") else self.root
        if not base.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file())
        return sorted(k for k in keys if not k.startswith("tmp/"))  # tmp/ holds writes in progress


def _encode(doc: dict) -> str:
    return json.dumps(doc, indent=2, sort_keys=True)
