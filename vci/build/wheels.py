"""A run's pinned requirements installed for an image's platform, without running anything inside the image.

pip resolves wheels for the target (``--platform``, ``--python-version``, ``--implementation cp``,
``--only-binary=:all:``) and unpacks them into a directory that becomes the dependency layer. pip matches
platform tags exactly, so several manylinux tags are listed: recent wheels are tagged 2_27/2_28 only.
``--no-compile`` keeps .pyc files (and their timestamps) out of the layer. The result is cached by the
hash of (requirements, python version, platform).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import BuildError, RequirementError
from ..files import commit, temporary_for

MANYLINUX = ("manylinux_2_28", "manylinux_2_27", "manylinux_2_17", "manylinux2014")
ARCH = {"amd64": "x86_64", "arm64": "aarch64"}
SKIPPED = {"vci"}  # vci ships in the runtime layer (its own source), never from PyPI


def image_requirements(requirements: list[str]) -> list[str]:
    """The requirements pip installs into the image: all but vci itself."""
    from packaging.requirements import Requirement

    return sorted(r for r in requirements if Requirement(r).name.lower() not in SKIPPED)


def platform_tags(platform: str) -> list[str]:
    os_name, _, arch = platform.partition("/")
    machine = ARCH.get(arch.split("/")[0])
    if os_name != "linux" or machine is None:
        raise BuildError(f"unsupported image platform {platform!r}", hint="use linux/amd64 or linux/arm64")
    return [f"{tag}_{machine}" for tag in MANYLINUX]


def deps_key(requirements: list[str], python: str, platform: str) -> str:
    text = "\n".join([python, platform, *image_requirements(requirements)])
    return "deps-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def install_requirements(requirements: list[str], python: str, platform: str, cache_dir: Path) -> Path:
    """A directory of site-packages for ``requirements`` on ``platform`` and CPython ``python`` (X.Y)."""
    reqs = image_requirements(requirements)
    target = Path(cache_dir) / "deps" / deps_key(requirements, python, platform)
    if (target / ".complete").is_file():
        return target
    with temporary_for(target, directory=True) as tmp:
        if reqs:
            _pip_install(reqs, python, platform, tmp)
        shutil.rmtree(tmp / "bin", ignore_errors=True)  # console scripts point at this machine's python
        (tmp / ".complete").write_text("\n".join(reqs) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        commit(tmp, target)
    return target


def _pip_install(reqs: list[str], python: str, platform: str, target: Path) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(reqs) + "\n")
    argv = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--target",
        str(target),
        "--no-compile",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python,
        "--no-warn-script-location",
    ]
    for tag in platform_tags(platform):
        argv += ["--platform", tag]
    argv += ["-r", f.name]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        raise _pip_error(proc.stderr, python, platform)


def _pip_error(stderr: str, python: str, platform: str) -> Exception:
    missing = re.search(r"No matching distribution found for (\S+)", stderr)
    if missing:
        return RequirementError(
            f"no wheel of {missing.group(1)} for CPython {python} on {platform}",
            hint="pick a version that publishes wheels for that platform, or build one and host it on your index",
        )
    last = [line for line in stderr.strip().splitlines() if line.strip()][-3:]
    return BuildError(
        "installing the requirements for the image failed: " + " | ".join(last),
        hint="run with --debug for pip's full output",
    )
