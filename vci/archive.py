"""Reproducible tar archives of directories, and extraction that refuses paths escaping the target."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

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


def extract_archive(archive: str | Path, dest: str | Path) -> Path:
    """Extract a tar into ``dest``, refusing absolute paths, ``..``, links out of ``dest`` and devices."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for m in members:
            _check_member(m, dest)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # a Python without extraction filters (before 3.10.12): the checks above are the defence
            tar.extractall(dest, members=members)
    return dest


def _check_member(m: tarfile.TarInfo, dest: Path) -> None:
    name = m.name
    if name.startswith("/") or ".." in Path(name).parts or not _inside(dest, dest / name):
        raise IntegrityError(f"archive entry {name!r} would escape the extraction directory; refused")
    if m.issym() or m.islnk():
        base = dest if m.islnk() else (dest / name).parent
        if os.path.isabs(m.linkname) or not _inside(dest, base / m.linkname):
            raise IntegrityError(f"archive link {name!r} -> {m.linkname!r} points outside; refused")
    elif not (m.isfile() or m.isdir()):
        raise IntegrityError(f"archive entry {name!r} is a device or fifo; refused")
