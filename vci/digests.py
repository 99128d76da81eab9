"""Content digests (``sha256:<hex>``): hashing files and bytes and checking them against a record."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .errors import IntegrityError, UsageError

CHUNK = 1 << 20
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> tuple[str, int]:
    """Return ``(digest, size)`` of a file, read once in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is a well-formed sha256 digest, else raise UsageError."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise UsageError(f"not a sha256 digest: {digest!r}", hint="expected sha256: and 64 hex digits")
    return digest


def hex_of(digest: str) -> str:
    return check_digest(digest).split(":", 1)[1]


def verify_file(path: str | Path, digest: str, size: int | None = None) -> None:
    """Raise IntegrityError unless the file at ``path`` has ``digest`` (and ``size`` when given)."""
    actual, actual_size = sha256_file(path)
    if actual != digest or (size is not None and actual_size != size):
        raise IntegrityError(
            f"{path} does not match its record: expected {digest} ({size} bytes), "
            f"found {actual} ({actual_size} bytes)",
            hint="the file was changed or corrupted; fetch it again from the store")


class HashingWriter:
    """A file-like sink that hashes and counts what is written through it."""

    def __init__(self, f):
        self._f = f
        self._h = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._h.update(data)
        self.size += len(data)
        return self._f.write(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self._h.hexdigest()
