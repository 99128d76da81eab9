"""Files written whole or not at all: a temporary file on the target's file system, fsynced, verified, renamed.

Every file vci writes that someone may read meanwhile (blobs, layers, layouts, tarballs, manifests,
state, ready and refs files) goes through here, so there is one temporary-name scheme,
``.<name>.<random>.tmp`` beside the target (or in a directory the caller names on the same file
system, such as a store's ``tmp/``), and one order: write, flush, fsync, check the digest when one is
expected, then ``os.replace`` (or ``os.link`` for a file that must not exist yet). A failure at any
step removes the temporary file and leaves the target as it was: a reader sees the old file or the
new one, never a part. The directory is not fsynced: a crash may lose a rename, never expose a part.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast

from .digests import CHUNK, HashingWriter
from .errors import ConfigError, IntegrityError

TMP_SUFFIX = ".tmp"


def cache_root() -> Path:
    """``VCI_CACHE_DIR``, else ``$XDG_CACHE_HOME/vci``, else ``~/.cache/vci``."""
    if os.environ.get("VCI_CACHE_DIR"):
        root, source = Path(os.environ["VCI_CACHE_DIR"]), "VCI_CACHE_DIR"
    else:
        root, source = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vci", "the cache"
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{source} {root} is a file, not a directory", hint="point VCI_CACHE_DIR at a directory")
    return root


@contextmanager
def temporary_for(
    dest: str | Path, *, directory: bool = False, within: str | Path | None = None, private: bool = False
) -> Iterator[Path]:
    """A new empty file (or directory) ``.<name>.<random>.tmp`` beside ``dest`` (or in ``within``),
    removed on exit unless it was renamed away meanwhile. Creates the directory it goes in. ``private``:
    the file is created 0600, so that no other user can read it at any moment (a private key)."""
    dest = Path(dest)
    parent = Path(within) if within is not None else dest.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_new(parent, dest.name, directory, 0o600 if private else 0o666)
    try:
        yield tmp
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def _create_new(parent: Path, name: str, directory: bool, mode: int = 0o666) -> Path:
    """Create ``.<name>.<random>.tmp`` exclusively, with the modes the umask gives (as ``open`` would;
    ``mkstemp``'s 0600 would make a layout or a tarball unreadable to other users)."""
    for _ in range(100):
        tmp = parent / f".{name}.{secrets.token_hex(6)}{TMP_SUFFIX}"
        try:
            if directory:
                tmp.mkdir()
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {parent} for {name}")


def commit(tmp: str | Path, dest: str | Path, *, mode: int | None = None) -> Path:
    """fsync the finished file ``tmp`` (a directory or a symlink as it is), give it ``mode``, and rename
    it over ``dest`` (atomically; a directory only onto an absent or empty one)."""
    if not os.path.islink(tmp) and os.path.isfile(tmp):
        _fsync(tmp)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, dest)
    return Path(dest)


def _fsync(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replacing(
    dest: str | Path,
    *,
    digest: str | None = None,
    size: int | None = None,
    mismatch: Callable[[str], Exception] | None = None,
    mode: int | None = None,
    within: str | Path | None = None,
) -> Iterator[BinaryIO]:
    """Yield a binary file for ``dest``'s new content; it replaces ``dest`` when the block ends without
    an error. With ``digest`` (and ``size``) what is written is hashed on the way (the object yielded then
    only writes) and must match, else ``mismatch(actual_digest)`` is raised (default: an IntegrityError)."""
    dest = Path(dest)
    with temporary_for(dest, within=within) as tmp:
        with open(tmp, "wb") as f:
            sink = HashingWriter(f)
            yield cast(BinaryIO, sink) if digest else f
            f.flush()
            os.fsync(f.fileno())
        if digest and (sink.digest != digest or (size is not None and sink.size != size)):
            raise (mismatch or _mismatch(dest, digest, size, sink.size))(sink.digest)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, dest)


def _mismatch(dest: Path, digest: str, size: int | None, written: int) -> Callable[[str], Exception]:
    return lambda actual: IntegrityError(
        f"{dest} would not match its record: expected {digest} ({size} bytes), got {actual} ({written} bytes)",
        hint="the source changed or is corrupted; nothing was written",
    )


def write_replacing(
    dest: str | Path, data: bytes | str, *, mode: int | None = None, within: str | Path | None = None
) -> Path:
    """Replace ``dest`` with ``data`` (a ``str`` is written as UTF-8), whole or not at all."""
    with replacing(dest, mode=mode, within=within) as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return Path(dest)


def write_new(dest: str | Path, data: bytes | str, *, within: str | Path | None = None, private: bool = False) -> Path:
    """Create ``dest`` holding ``data``, whole; FileExistsError (nothing changed) when it exists already.
    ``private``: created 0600 (see ``temporary_for``)."""
    dest = Path(dest)
    with temporary_for(dest, within=within, private=private) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        _fsync(tmp)
        os.link(tmp, dest)  # atomic, and refused when dest exists: a local conditional put
    return dest


def copy_chunks(chunks: Iterable[bytes], out, progress: Callable[[int], None] | None = None) -> int:
    """Write every chunk to ``out``, calling ``progress(len(chunk))`` after each; the bytes written."""
    written = 0
    for chunk in chunks:
        out.write(chunk)
        written += len(chunk)
        if progress is not None:
            progress(len(chunk))
    return written


def file_chunks(f: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    """``f``'s bytes in pieces of ``size`` (1 MiB): for :func:`copy_chunks` from a file."""
    while chunk := f.read(size):
        yield chunk
