"""Reproducible image layers: entries become a sorted, normalised tar+gzip blob, hashed in one pass.

A layer is written once: the tar stream goes through a hasher (its sha256 is the ``diff_id``) into gzip
(mtime 0, no file name) into a hasher (the blob ``digest`` and size) into a file. Nothing is read back.
The same entries and ``epoch`` (SOURCE_DATE_EPOCH) always give the same bytes, on any machine with the
same zlib. ``LayerCache`` keeps built layers under a caller-chosen key so unchanged layers are reused.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, TypeVar

from ..digests import BinarySink, HashingWriter
from ..errors import BuildError, UsageError
from ..files import replacing, write_replacing
from . import OCI_LAYER_GZIP, Descriptor

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

DEFAULT_LEVEL = 6
_GZIP_WRITE = 1 << 20
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Entry:
    """One path in a layer: a file copied from disk, literal bytes, a directory or a symbolic link."""

    path: str
    kind: str
    source: Path | None = None
    data: bytes | None = None
    target: str | None = None
    mode: int | None = None

    @classmethod
    def file(cls, path: str, source: str | Path, mode: int | None = None) -> Entry:
        return cls(_image_path(path), "file", source=Path(source), mode=mode)

    @classmethod
    def bytes(cls, path: str, data: bytes, mode: int = 0o644) -> Entry:
        return cls(_image_path(path), "bytes", data=bytes(data), mode=mode)

    @classmethod
    def directory(cls, path: str, mode: int = 0o755) -> Entry:
        return cls(_image_path(path), "dir", mode=mode)

    @classmethod
    def symlink(cls, path: str, target: str) -> Entry:
        return cls(_image_path(path), "symlink", target=target)


@dataclass(frozen=True)
class Layer:
    """A layer blob: its descriptor, the digest of its uncompressed tar, and where its bytes are.

    ``path`` is a local file holding the compressed blob (None when it lives only in a registry);
    ``origin`` is ``registry/repository`` where the blob is known to exist (for cross-repo mounts).
    """

    descriptor: Descriptor
    diff_id: str
    path: Path | None = None
    origin: str | None = None

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def size(self) -> int:
        return self.descriptor.size

    @property
    def media_type(self) -> str:
        return self.descriptor.media_type

    def open(self):
        if self.path is None:
            raise BuildError(f"layer {self.digest} has no local bytes", hint="fetch it from its registry first")
        return open(self.path, "rb")


def tree_entries(root: str | Path, prefix: str) -> list[Entry]:
    """Entries for every directory, file and symlink under ``root``, placed under ``prefix`` in the image."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory", hint="give a directory to put in the layer")
    entries = [Entry.directory(prefix)]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            entries.append(
                _tree_entry(Path(dirpath) / name, f"{prefix}/{Path(dirpath, name).relative_to(root).as_posix()}")
            )
    return entries


def _tree_entry(path: Path, image_path: str) -> Entry:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        return Entry.symlink(image_path, os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return Entry.directory(image_path)
    if stat.S_ISREG(st.st_mode):
        return Entry.file(image_path, path)
    raise BuildError(f"{path} is neither a file, a directory nor a symlink", hint="remove it from the tree")


def write_layer(
    entries: list[Entry],
    dest: str | Path,
    *,
    epoch: int,
    level: int = DEFAULT_LEVEL,
    progress: Callable[[int], object] | None = None,
) -> Layer:
    """Write ``entries`` as a tar+gzip blob at ``dest`` in one pass; return its Layer.

    ``progress(n)`` is called with the number of uncompressed tar bytes as they are compressed."""
    if not 0 <= level <= 9:
        raise UsageError(f"gzip level {level} is out of range", hint="choose 0 (none) to 9 (smallest)")
    dest = Path(dest)
    try:
        with replacing(dest) as raw:
            blob = HashingWriter(raw)
            with gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=blob, mtime=0) as gz:
                buffered = io.BufferedWriter(gz, _GZIP_WRITE)  # tarfile writes 10 KiB pieces; zlib likes more
                tar_sink = HashingWriter(_Counting(buffered, progress) if progress else buffered)
                with tarfile.open(fileobj=tar_sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    for entry in _complete_and_sorted(entries):
                        _add(tar, entry, epoch)
                buffered.flush()
                buffered.detach()
    except OSError as exc:
        raise BuildError(f"could not write layer {dest}: {exc}") from exc
    return Layer(Descriptor(OCI_LAYER_GZIP, blob.digest, blob.size), tar_sink.digest, dest)


def _complete_and_sorted(entries: list[Entry]) -> list[Entry]:
    """Entries keyed by path (later wins), every parent directory added, sorted by path."""
    by_path = {e.path: e for e in entries}
    for path in list(by_path):
        for parent in PurePosixPath(path).parents:
            if str(parent) not in (".", "") and str(parent) not in by_path:
                by_path[str(parent)] = Entry.directory(str(parent))
    return [by_path[p] for p in sorted(by_path)]


def _add(tar: tarfile.TarFile, entry: Entry, epoch: int) -> None:
    info = tarfile.TarInfo(entry.path)
    info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "", ""
    if entry.kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, entry.mode or 0o755
        tar.addfile(info)
    elif entry.kind == "symlink":
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, _needs(entry, entry.target, "target")
        tar.addfile(info)
    elif entry.kind == "bytes":
        data = _needs(entry, entry.data, "data")
        info.mode, info.size = entry.mode or 0o644, len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        _add_file(tar, info, entry)


def _needs(entry: Entry, value: _T | None, what: str) -> _T:
    """``value``, the field a ``kind`` of entry needs (the Entry constructors always set it)."""
    if value is None:
        raise UsageError(
            f"the layer entry {entry.path} ({entry.kind}) has no {what}",
            hint="make entries with Entry.file, Entry.bytes, Entry.directory or Entry.symlink",
        )
    return value


def _add_file(tar: tarfile.TarFile, info: tarfile.TarInfo, entry: Entry) -> None:
    try:
        with open(_needs(entry, entry.source, "source"), "rb") as f:
            st = os.fstat(f.fileno())
            info.size = st.st_size
            info.mode = entry.mode or (0o755 if st.st_mode & 0o111 else 0o644)
            tar.addfile(info, f)
    except FileNotFoundError:
        raise BuildError(f"{entry.source} (for {entry.path} in the layer) does not exist") from None


def _image_path(path: str) -> str:
    clean = PurePosixPath("/" + str(path).lstrip("/"))
    parts = [p for p in clean.parts[1:] if p not in ("", ".")]
    if not parts or ".." in parts:
        raise UsageError(f"bad path in image: {path!r}", hint="use an absolute path without '..'")
    return "/".join(parts)


class LayerCache:
    """Built layers under ``root/layers/<key>/gzip-<level>/`` (``blob`` + ``layer.json``), reused while the
    key matches: one entry per key and compression level, so building at another level keeps the first."""

    def __init__(self, root: str | Path):
        self.root = Path(root) / "layers"

    def get(self, key: str, *, epoch: int, level: int = DEFAULT_LEVEL) -> Layer | None:
        entry = self._dir(key, level)
        try:
            record = json.loads((entry / "layer.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        blob = entry / "blob"
        if record.get("epoch") != epoch or record.get("level") != level or not blob.is_file():
            return None
        if blob.stat().st_size != record["descriptor"]["size"]:
            return None
        return Layer(Descriptor.from_json(record["descriptor"]), record["diff_id"], blob)

    def build(
        self,
        key: str,
        entries: list[Entry],
        *,
        epoch: int,
        level: int = DEFAULT_LEVEL,
        progress: Callable[[int], object] | None = None,
    ) -> Layer:
        """The cached layer for ``key`` at ``level``, or a new one written from ``entries`` and recorded."""
        cached = self.get(key, epoch=epoch, level=level)
        if cached is not None:
            return cached
        entry = self._dir(key, level)
        layer = write_layer(entries, entry / "blob", epoch=epoch, level=level, progress=progress)
        record = {
            "descriptor": layer.descriptor.to_json(),
            "diff_id": layer.diff_id,
            "epoch": epoch,
            "level": level,
        }
        write_replacing(entry / "layer.json", json.dumps(record, sort_keys=True))
        return layer

    def _dir(self, key: str, level: int) -> Path:
        if not _KEY.match(key):
            raise UsageError(f"bad layer cache key {key!r}", hint="use letters, digits and . _ : - only")
        if not 0 <= level <= 9:
            raise UsageError(f"gzip level {level} is out of range", hint="choose 0 (none) to 9 (smallest)")
        return self.root / key.replace(":", "=") / f"gzip-{level}"


def sha256_of_tar(entries: list[Entry], *, epoch: int) -> str:
    """The diff_id the entries would have, without compressing (used by dry runs)."""
    sink = HashingWriter(_NullFile())
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in _complete_and_sorted(entries):
            _add(tar, entry, epoch)
    return sink.digest


class _Counting:
    """A pass-through writer that reports how many bytes went through it."""

    def __init__(self, sink: BinarySink, progress: Callable[[int], object]):
        self._sink, self._progress = sink, progress

    def write(self, data: ReadableBuffer) -> int:
        self._progress(memoryview(data).nbytes)
        return self._sink.write(data)


class _NullFile:
    def write(self, data: ReadableBuffer) -> int:
        return memoryview(data).nbytes
