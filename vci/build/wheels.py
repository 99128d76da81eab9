"""A run's dependencies installed for an image's platform, without running anything inside the image.

A run logged with a lock (``manifest["lock"]``: the whole closure, names and versions, as installed when
it was logged) gets exactly that set: pip downloads one wheel per locked distribution for the target
(``--no-deps``, ``--platform``, ``--python-version``, ``--implementation cp``, ``--only-binary=:all:``),
and installs those very files with ``--no-deps``. A locked distribution with no wheel for the platform is
an error naming it. The sha256 of every wheel is recorded in the store at the first build of a (lock,
Python, platform) (``locks/<hex>.json``, written once), and every later build downloads with
``--require-hashes`` against that record, so another machine, next month, installs the same bytes or
fails. What is installed is then checked against the target: each distribution's requirements whose
markers hold on the image's platform must be in the lock. Runs logged before locks resolve their direct
requirements with pip as before. pip matches platform tags exactly, so several manylinux tags are listed
(recent wheels are tagged 2_27/2_28 only). The directory is cached by ``Dependencies.key``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from ..errors import BuildError, ConflictError, IntegrityError, NotFoundError, RequirementError
from ..files import commit, temporary_for
from .bytecode import bytecode_tag, compile_tree

MANYLINUX = ("manylinux_2_28", "manylinux_2_27", "manylinux_2_17", "manylinux2014")
ARCH = {"amd64": "x86_64", "arm64": "aarch64"}
SKIPPED = {"vci"}  # vci ships in the runtime layer (its own source), never from PyPI
log = logging.getLogger("vci")


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


class Dependencies:
    """What a run's dependency layer holds for one image (CPython ``python`` X.Y on ``platform``)."""

    def __init__(self, manifest: dict, python: str, platform: str):
        self.python, self.platform = python, platform
        self.python_full = (manifest.get("environment") or {}).get("python") or python
        self.requirements = image_requirements(manifest.get("requirements") or [])
        locked = manifest.get("lock")
        self.lock = None if locked is None else [e for e in locked if _canonical(e["name"]) not in SKIPPED]

    @property
    def pins(self) -> list[str]:
        """``name==version`` for each locked distribution; a run without a lock: its direct requirements."""
        if self.lock is None:
            return self.requirements
        return [f"{e['name']}=={e['version']}" for e in sorted(self.lock, key=lambda e: _canonical(e["name"]))]

    def key(self) -> str:
        kind = "requirements" if self.lock is None else "lock"
        text = "\n".join([self.python, self.platform, f"bytecode:{bytecode_tag(self.python)}", kind, *self.pins])
        return "deps-" + hashlib.sha256(text.encode()).hexdigest()[:32]

    def describe(self) -> str:
        where = f"for CPython {self.python} {self.platform}"
        if self.lock is None:
            return f"{len(self.requirements)} requirements and what pip resolves for them {where}"
        return f"{len(self.lock)} locked distributions {where}"

    def hashes_key(self) -> str:
        """Where the store keeps the locked wheels' sha256 for this Python and platform."""
        text = "\n".join([self.python, self.platform, *self.pins])
        return f"locks/{hashlib.sha256(text.encode()).hexdigest()}.json"


def install_dependencies(deps: Dependencies, cache_dir: Path, image_root: str, store=None) -> Path:
    """A directory of site-packages (with bytecode for ``image_root``) holding ``deps``; ``store`` keeps
    the locked wheels' hashes (None: nothing is recorded or checked, as for a throw-away build)."""
    target = Path(cache_dir) / "deps" / deps.key()
    if (target / ".complete").is_file():
        return target
    with temporary_for(target, directory=True) as tmp:
        if deps.lock is not None:
            _install_locked(deps, tmp, store)
        elif deps.requirements:
            log.warning("the run has no lock (logged before vci locked dependencies): pip resolves them now")
            _pip(["install", "--target", str(tmp), "--no-compile", "--no-warn-script-location"], deps, deps.pins)
        shutil.rmtree(tmp / "bin", ignore_errors=True)  # console scripts point at this machine's python
        compile_tree(tmp, image_root, deps.python)
        (tmp / ".complete").write_text("\n".join(deps.pins) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        commit(tmp, target)
    return target


def _install_locked(deps: Dependencies, target: Path, store) -> None:
    """Download exactly the locked wheels (against the recorded hashes, once there are some), install
    those files, and check the result is whole for the image's platform."""
    if not deps.lock:
        return
    recorded = _recorded_hashes(store, deps)
    with tempfile.TemporaryDirectory(prefix="vci-wheels-") as tmp:
        wheels = Path(tmp) / "wheels"
        pins = [p + (f" --hash=sha256:{recorded[_canonical(p)]['sha256']}" if recorded else "") for p in deps.pins]
        _pip(["download", "--dest", str(wheels), *(["--require-hashes"] if recorded else [])], deps, pins)
        found = _downloaded(wheels, deps)
        if recorded is None and store is not None:
            _record_hashes(store, deps, found)
        exact = [f"{p} --hash=sha256:{found[_canonical(p)]['sha256']}" for p in deps.pins]  # these files only
        install = ["install", "--no-index", "--find-links", str(wheels), "--target", str(target), "--no-compile"]
        _pip([*install, "--no-warn-script-location", "--require-hashes"], deps, exact)
    check_closure(target, deps)


def _pip(command: list[str], deps: Dependencies, items: list[str]) -> None:
    """Run pip ``command`` for the image's platform on ``items`` (requirement lines, or wheel files)."""
    argv = [sys.executable, "-m", "pip", *command, "--quiet", "--disable-pip-version-check", "--no-input"]
    argv += ["--only-binary=:all:", "--implementation", "cp", "--python-version", deps.python]
    argv += [] if deps.lock is None else ["--no-deps"]
    for tag in platform_tags(deps.platform):
        argv += ["--platform", tag]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(items) + "\n")
    try:
        proc = subprocess.run([*argv, "-r", f.name], capture_output=True, text=True, timeout=1800)
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        raise _pip_error(proc.stderr, deps)


def _downloaded(wheels: Path, deps: Dependencies) -> dict[str, dict]:
    """``{canonical name: {"file", "sha256"}}`` of the wheels pip saved: one per locked distribution."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    found = {}
    for path in sorted(wheels.glob("*.whl")) if wheels.is_dir() else []:
        try:
            name = str(parse_wheel_filename(path.name)[0])
        except InvalidWheelFilename:
            continue
        found[name] = {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    missing = [e["name"] for e in deps.lock or [] if _canonical(e["name"]) not in found]
    if missing:
        raise BuildError(f"pip saved no wheel for the locked {', '.join(missing)}", hint="run with --debug")
    return found


def _recorded_hashes(store, deps: Dependencies) -> dict | None:
    if store is None:
        return None
    try:
        doc = store.get_json(deps.hashes_key())
    except NotFoundError:
        return None
    wheels = doc.get("wheels") if isinstance(doc, dict) else None
    names = {_canonical(e["name"]) for e in deps.lock or []}
    if not isinstance(wheels, dict) or set(wheels) != names or not all(_is_hash(w) for w in wheels.values()):
        raise IntegrityError(
            f"the store's record of the locked wheels' hashes ({deps.hashes_key()}) does not match the lock",
            hint="remove that record so that the next build records the hashes again",
        )
    return wheels


def _is_hash(wheel) -> bool:
    return isinstance(wheel, dict) and bool(re.fullmatch(r"[0-9a-f]{64}", str(wheel.get("sha256"))))


def _record_hashes(store, deps: Dependencies, found: dict) -> None:
    """Write the hashes once; a build that raced this one must have recorded the same wheels."""
    doc = {"python": deps.python, "platform": deps.platform, "pins": deps.pins, "wheels": found}
    try:
        store.put_json_new(deps.hashes_key(), doc)
    except ConflictError:
        if _recorded_hashes(store, deps) != found:
            raise IntegrityError(
                f"another build recorded other wheels for this lock ({deps.hashes_key()}) at the same time",
                hint="package again: the build then checks against the recorded hashes",
            ) from None
    log.info("recorded the sha256 of %d locked wheels in %s", len(found), deps.hashes_key())


def target_environment(deps: Dependencies) -> dict[str, str]:
    """The marker environment of the image (PEP 508), as far as the platform and the run's Python say."""
    platform_tags(deps.platform)  # refuses what is not linux/amd64 or linux/arm64
    machine = ARCH[deps.platform.split("/")[1]]
    return {
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "python_version": deps.python,
        "python_full_version": deps.python_full,
        "implementation_version": deps.python_full,
        "os_name": "posix",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": machine,
    }


def check_closure(site: Path, deps: Dependencies) -> None:
    """Every requirement of the run and of each installed distribution that holds on the image's platform
    must be installed: a lock made on another OS or machine may lack what the image needs."""
    from packaging.requirements import Requirement

    env = target_environment(deps)
    installed = {_canonical(d.metadata["Name"]): d for d in metadata.distributions(path=[str(site)])}
    wanted = [(Requirement(r), "the run", [""]) for r in deps.requirements]
    for entry in deps.lock or []:
        dist = installed.get(_canonical(entry["name"]))
        reqs = [Requirement(r) for r in (dist.requires or [])] if dist else []
        wanted += [(r, entry["name"], ["", *entry.get("extras", [])]) for r in reqs]
    missing = sorted(
        {
            f"{req.name} (required by {who})"
            for req, who, extras in wanted
            if _canonical(req.name) not in installed
            and _canonical(req.name) not in SKIPPED
            and (req.marker is None or any(req.marker.evaluate({**env, "extra": e}) for e in extras))
        }
    )
    if missing:
        raise RequirementError(
            f"the run's lock lacks what CPython {deps.python} on {deps.platform} needs: {', '.join(missing)}",
            hint="log the run where it runs as in the image (Linux, this Python) with those installed",
        )


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.split("==")[0].split("[")[0].strip()).lower()


def _pip_error(stderr: str, deps: Dependencies) -> Exception:
    missing = re.search(r"No matching distribution found for (\S+)", stderr)
    if missing:
        return RequirementError(
            f"no wheel of {missing.group(1)} for CPython {deps.python} on {deps.platform}",
            hint="pick a version that publishes wheels for that platform, or build one and host it on your index",
        )
    if "DO NOT MATCH THE HASHES" in stderr:
        names = sorted(set(re.findall(r"^\s+(\S+)==\S+ from ", stderr, re.MULTILINE)))
        return IntegrityError(
            f"the wheels downloaded for {', '.join(names) or 'the lock'} differ from those recorded at the first "
            f"build ({deps.hashes_key()})",
            hint="the index now serves other bytes for these versions: find out why before trusting them",
        )
    last = [line for line in stderr.strip().splitlines() if line.strip()][-3:]
    return BuildError(
        "installing the requirements for the image failed: " + " | ".join(last),
        hint="run with --debug for pip's full output",
    )
