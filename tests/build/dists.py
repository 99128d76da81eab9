"""Distributions made up for lock tests: installed here (a ``.dist-info`` in a site directory on sys.path, as
pip leaves one) and published (real wheels in a directory pip reads through ``PIP_FIND_LINKS``)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

WHEEL = "Wheel-Version: 1.0\nGenerator: vci-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"


def metadata_text(name: str, version: str, requires=(), extras=()) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Provides-Extra: {extra}" for extra in extras]
    lines += [f"Requires-Dist: {req}" for req in requires]
    return "\n".join(lines) + "\n"


def install(site: Path, name: str, version: str, requires=(), extras=()) -> None:
    """A distribution as pip installs it: its metadata in ``site/<name>-<version>.dist-info``."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(metadata_text(name, version, requires, extras))
    (info / "INSTALLER").write_text("pip\n")


def publish(index: Path, name: str, version: str, requires=(), extras=(), tag: str = "py3-none-any") -> Path:
    """A wheel of ``name`` (one module with ``VERSION``) in the find-links directory ``index``."""
    module, stem = name.replace("-", "_"), f"{name.replace('-', '_')}-{version}"
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\nKINDS = {{'a', 'b', 'c'}}\n".encode(),
        f"{stem}.dist-info/METADATA": metadata_text(name, version, requires, extras).encode(),
        f"{stem}.dist-info/WHEEL": WHEEL.format(tag=tag).encode(),
    }
    record = [f"{path},sha256={_b64(hashlib.sha256(data).digest())},{len(data)}" for path, data in files.items()]
    files[f"{stem}.dist-info/RECORD"] = ("\n".join([*record, f"{stem}.dist-info/RECORD,,"]) + "\n").encode()
    index.mkdir(parents=True, exist_ok=True)
    path = index / f"{stem}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name_in_zip, data in files.items():
            wheel.writestr(zipfile.ZipInfo(name_in_zip, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return path


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
