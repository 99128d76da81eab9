"""The embedded default store: a directory (``./.vci``) of content-addressed blobs and JSON documents."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..digests import CHUNK, HashingWriter, check_digest, sha256_file, verify_file
from ..errors import ConflictError, IntegrityError, NotFoundError, StoreError
from .base import Descriptor, Progress, blob_key


class LocalStore:
    """Blobs are written to ``tmp/`` first and renamed into place, so a partial blob is never visible."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)

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
            raise StoreError(f"cannot write to the store at {self.root}: {exc.strerror}",
                             hint="check the path and its permissions, or set VCI_STORE") from exc
        return tmp

    def has_blob(self, digest: str) -> bool:
        return self._path(blob_key(digest)).is_file()

    def put_blob(self, path, *, digest=None, size=None, progress: Progress | None = None) -> Descriptor:
        if digest is None:
            digest, size = sha256_file(path)  # first, so that an unchanged file is not copied again
        if self.has_blob(check_digest(digest)):
            return Descriptor(digest, size if size is not None else os.path.getsize(path), 0)
        fd, tmp = tempfile.mkstemp(dir=self._tmp(), prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                sink = HashingWriter(out)
                while chunk := src.read(CHUNK):
                    sink.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
            if sink.digest != digest:
                raise IntegrityError(f"{path} changed while it was stored: expected {digest}, read {sink.digest}")
            return self._commit_blob(Path(tmp), sink.digest, sink.size)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put_bytes(self, data: bytes) -> Descriptor:
        fd, tmp = tempfile.mkstemp(dir=self._tmp(), prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as out:
                sink = HashingWriter(out)
                sink.write(data)
            return self._commit_blob(Path(tmp), sink.digest, sink.size)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _commit_blob(self, tmp: Path, digest: str, size: int) -> Descriptor:
        final = self._path(blob_key(digest))
        if final.is_file():
            return Descriptor(digest, size, 0)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)
        return Descriptor(digest, size, size)

    def get_blob(self, digest, dest, *, progress: Progress | None = None) -> Path:
        src = self._path(blob_key(check_digest(digest)))
        if not src.is_file():
            raise NotFoundError(f"blob {digest} is not in the store {self.url}")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
        os.close(fd)
        try:  # a unique partial file, removed on any failure: concurrent fetches never collide
            shutil.copyfile(src, tmp)
            verify_file(tmp, digest)
            if progress is not None:
                progress(os.path.getsize(tmp))
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return dest

    def read_blob(self, digest: str) -> bytes:
        from ..digests import sha256_bytes
        src = self._path(blob_key(check_digest(digest)))
        try:
            data = src.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} is not in the store {self.url}") from None
        if sha256_bytes(data) != digest:
            raise IntegrityError(f"blob {digest} in {self.url} is corrupted", hint="log the run again")
        return data

    def put_json_new(self, key: str, doc: dict) -> None:
        final = self._path(key)
        tmp = self._write_tmp_json(doc)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(tmp, final)  # atomic and fails if the key exists: a local conditional put
        except FileExistsError:
            raise ConflictError(f"{key} already exists in the store {self.url}") from None
        finally:
            os.unlink(tmp)

    def put_json(self, key: str, doc: dict) -> None:
        final = self._path(key)
        tmp = self._write_tmp_json(doc)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)

    def _write_tmp_json(self, doc: dict) -> str:
        fd, tmp = tempfile.mkstemp(dir=self._tmp(), prefix="doc-")
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
        return tmp

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
