"""Reproducible tar archives of directories, extracted only as vci writes them, and checked once extracted."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath
from typing import IO

from .digests import CHUNK
from .errors import IntegrityError, UsageError


def _normalise(info: tarfile.TarInfo, mtime: int) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = mtime
    if info.isdir():
        info.mode = 0o755
    elif info.isfile():
        info.mode = 0o755 if info.mode & 0o111 else 0o644
    return info


def archive_directory(src: str | Path, dest: str | Path, *, mtime: int = 0) -> Path:
    """Write ``src``'s tree to an uncompressed tar at ``dest``: sorted entries, fixed owner and mtime.

    Symbolic links are kept only when they point inside ``src``; anything else (sockets, devices,
    links leaving the tree) is refused, because the archive must mean the same thing everywhere.
    """
    root = Path(src)
    if not root.is_dir():
        raise UsageError(f"{src} is not a directory")
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in _walk_sorted(root):
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                target = os.readlink(path)
                if os.path.isabs(target) or not _inside(root, path.parent / target):
                    raise UsageError(
                        f"{path} is a link leaving the artifact directory",
                        hint="copy the file it points to into the directory",
                    )
            elif not (path.is_file() or path.is_dir()):
                raise UsageError(f"{path} is not a regular file or directory")
            info = tar.gettarinfo(str(path), arcname=rel)
            _normalise(info, mtime)
            if info.isfile():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return Path(dest)


def _walk_sorted(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            yield base / name


def _inside(root: Path, path: Path) -> bool:
    real_root = os.path.realpath(root)
    return os.path.realpath(path) == real_root or os.path.realpath(path).startswith(real_root + os.sep)


# what a compressed file starts with: vci writes directory artifacts as plain tars, never compressed
_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


def extract_archive(archive: str | Path, dest: str | Path, *, max_size: int | None = None) -> Path:
    """Extract a tar as vci writes it into ``dest``: uncompressed, holding only files, directories and
    links that stay inside ``dest``. Anything else is refused before a byte is written: absolute paths,
    ``..``, links out, devices, sparse files, and, with ``max_size`` (the size the manifest records),
    an archive or contents larger than that."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with _open_plain(archive, max_size) as tar:
        members = _checked_members(tar, archive, dest, max_size)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # a Python without extraction filters (before 3.10.12): the checks above are the defence
            tar.extractall(dest, members=members)
    return dest


def _open_plain(archive: str | Path, max_size: int | None) -> tarfile.TarFile:
    """``archive`` opened as an uncompressed tar, once its size and first bytes say it is one."""
    size = os.path.getsize(archive)
    if max_size is not None and size > max_size:
        raise IntegrityError(f"archive {archive} has {size} bytes, over the {max_size} recorded; refused")
    with open(archive, "rb") as f:
        head = f.read(6)
    kind = next((name for magic, name in _COMPRESSED.items() if head.startswith(magic)), None)
    if kind:
        raise IntegrityError(
            f"archive {archive} is {kind}-compressed; vci writes directory artifacts as plain tars: refused",
            hint="log the directory with run.log_artifact(key, path) instead of a tar of it",
        )
    try:
        return tarfile.open(archive, "r:")
    except tarfile.ReadError as exc:
        raise IntegrityError(f"archive {archive} is not a tar archive: {exc}") from exc


def _checked_members(
    tar: tarfile.TarFile, archive: str | Path, dest: Path, max_size: int | None
) -> list[tarfile.TarInfo]:
    """Every entry of ``tar``, each checked as its header is read (before the next is looked for), so
    that a header claiming more bytes than ``max_size`` is refused at once."""
    members, total = [], 0
    try:
        for m in tar:
            _check_member(m, dest)
            total += m.size if m.isfile() else 0
            if max_size is not None and total > max_size:
                raise IntegrityError(f"archive {archive} would expand to {total} bytes, over its {max_size}; refused")
            members.append(m)
    except tarfile.TarError as exc:
        raise IntegrityError(f"archive {archive} is not a whole tar archive: {exc}") from exc
    return members


def _check_member(m: tarfile.TarInfo, dest: Path) -> None:
    name = m.name
    if name.startswith("/") or ".." in Path(name).parts or not _inside(dest, dest / name):
        raise IntegrityError(f"archive entry {name!r} would escape the extraction directory; refused")
    if m.issym() or m.islnk():
        base = dest if m.islnk() else (dest / name).parent
        if os.path.isabs(m.linkname) or not _inside(dest, base / m.linkname):
            raise IntegrityError(f"archive link {name!r} -> {m.linkname!r} points outside; refused")
    elif m.issparse() or not (m.isfile() or m.isdir()):
        raise IntegrityError(f"archive entry {name!r} is a device, fifo or sparse file; refused")


def matches_archive(archive: str | Path, dest: str | Path) -> bool:
    """Whether ``dest`` holds exactly what extracting ``archive`` gave: the same entries, each of the same
    kind, files with the same bytes, links with the same targets (a tree extracted earlier is checked
    with this before it is used again: one read of the archive and one of the tree)."""
    dest = Path(dest)
    expected: set[str] = set()
    with _open_plain(archive, None) as tar:
        for m in tar:
            rel = PurePosixPath(m.name)
            if rel.as_posix() == ".":
                continue
            expected.update(p.as_posix() for p in (rel, *rel.parents) if p.as_posix() != ".")
            if not _entry_matches(tar, m, dest / rel, dest):
                return False
    return _tree(dest) == expected


def _tree(root: Path) -> set[str]:
    """Every entry under ``root``, relative (links are entries, not followed)."""
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        found.update((Path(dirpath) / name).relative_to(root).as_posix() for name in dirnames + filenames)
    return found


def _entry_matches(tar: tarfile.TarFile, m: tarfile.TarInfo, path: Path, dest: Path) -> bool:
    if m.issym():
        return path.is_symlink() and os.readlink(path) == m.linkname
    if path.is_symlink():
        return False
    if m.isdir():
        return path.is_dir()
    if m.islnk():  # extracted as a second name for (or a copy of) an earlier file: the same bytes
        original = dest / m.linkname
        return path.is_file() and original.is_file() and _same_bytes(open(original, "rb"), path)
    member = tar.extractfile(m)
    return member is not None and path.is_file() and path.stat().st_size == m.size and _same_bytes(member, path)


def _same_bytes(expected: IO[bytes], path: Path) -> bool:
    with expected, open(path, "rb") as f:
        while True:
            want, got = expected.read(CHUNK), f.read(CHUNK)
            if want != got:
                return False
            if not want:
                return True
