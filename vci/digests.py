"""Content digests (``sha256:<hex>``): hashing files and bytes and checking them against a record."""

from __future__ import annotations

import hashlib
import os
import re
import sys
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


def read_hashed(path: str | Path, chunk: int = 8 * CHUNK) -> tuple[memoryview, str]:
    """Return ``(bytes, digest)`` of a file read once into memory, hashing each chunk while a second
    thread reads the next one (both release the GIL): about as fast as the slower of the two alone.

    The memory is an anonymous mapping that the reader populates chunk by chunk just before reading into
    it: a bytearray would be zero-filled first, and pages faulted in one by one cost about as much as the
    read itself (benchmarks/upload.py)."""
    import mmap
    import queue
    import threading

    size = os.path.getsize(path)
    memory = mmap.mmap(-1, size) if size else None
    view, ends = memoryview(memory if memory is not None else b""), queue.SimpleQueue()
    reader = threading.Thread(target=_fill, args=(path, memory, view, chunk, ends), name="vci-read", daemon=True)
    reader.start()
    hasher, done = hashlib.sha256(), 0
    while isinstance(end := ends.get(), int):
        hasher.update(view[done:end])
        done = end
    reader.join()
    if end is not None:
        raise end
    if os.path.getsize(path) != size:
        raise _changed(path)
    return view.toreadonly(), "sha256:" + hasher.hexdigest()


_POPULATE_WRITE = 23  # Linux >= 5.14 MADV_POPULATE_WRITE: fault a range in with one call


def _fill(path, memory, view: memoryview, chunk: int, ends) -> None:
    """Read ``path`` into ``view`` chunk by chunk, putting each end offset on ``ends``; then None, or the
    error that stopped it."""
    offset, populate = 0, sys.platform == "linux"
    try:
        with open(path, "rb", buffering=0) as f:
            while offset < len(view):
                length = min(chunk, len(view) - offset)
                if populate:
                    try:
                        memory.madvise(_POPULATE_WRITE, offset, length)
                    except OSError:  # an older kernel: pages are faulted in by the read instead
                        populate = False
                if not (n := f.readinto(view[offset:offset + length])):
                    break
                offset += n
                ends.put(offset)
        ends.put(None if offset == len(view) else _changed(path))
    except OSError as exc:
        ends.put(exc)


def _changed(path) -> IntegrityError:
    return IntegrityError(f"{path} changed while it was read", hint="do not modify a file while vci logs it")


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
