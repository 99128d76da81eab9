"""Requirements of a run, pinned to the versions installed now so an image gets what was tested."""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

from . import __version__
from .errors import RequirementError

log = logging.getLogger("vci")

# Always pinned: the model pickle needs the same cloudpickle; vci itself ships in the image's runtime
# layer (vci's own source, never resolved from PyPI, where an unrelated package is named vci).
AUTOMATIC = ("cloudpickle", "vci")
# a package asked for by name whose CPU build is what is installed (the same modules, no CUDA kernels: on
# linux x86_64 tensorflow's wheel is twice the size of tensorflow-cpu's): the CPU build is what is pinned
CPU_BUILDS = {"tensorflow": "tensorflow-cpu", "xgboost": "xgboost-cpu"}


def read_requirements(source: str | Path | list[str] | tuple[str, ...]) -> list[str]:
    """Lines of a requirements file, or the given list; comments and blank lines dropped."""
    if isinstance(source, (list, tuple)):
        lines = [str(x) for x in source]
    else:
        path = Path(source)
        if not path.is_file():
            raise RequirementError(
                f"requirements file {path} does not exist",
                hint="pass a list of requirement strings or an existing file",
            )
        lines = path.read_text().splitlines()
    out = []
    for line in lines:
        text = line.split(" #", 1)[0].strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("-"):
            raise RequirementError(
                f"requirement option {text!r} is not supported",
                hint="list packages only; indexes are configured with pip's own settings",
            )
        out.append(text)
    return out


def pin_requirement(text: str) -> str:
    """``pkg`` or ``pkg>=1`` -> ``pkg==<installed>``; a package not installed is kept as written."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise RequirementError(
            f"malformed requirement {text!r}: {exc}", hint="use the pip form, e.g. scikit-learn==1.5.2 or numpy>=1.26"
        ) from None
    if req.url:
        raise RequirementError(
            f"requirement {text!r} points at a URL",
            hint="images are built from package indexes; publish a wheel or vendor the code",
        )
    req = _installed_build(req)
    pinned = [s for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
    if pinned:
        _refuse_other_pin(req, pinned[0].version)
        return str(req)
    try:
        installed = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        log.warning("requirement %s is not installed here; kept as written (unpinned)", text)
        return str(req)
    if req.specifier and not req.specifier.contains(installed, prereleases=True):
        raise RequirementError(
            f"requirement {text!r} does not match the installed {req.name} {installed}",
            hint=f"install a matching version or require {req.name}=={installed}",
        )
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    marker = f"; {req.marker}" if req.marker else ""
    return f"{req.name}{extras}=={installed}{marker}"


def _installed_build(req):
    """``req`` renamed to its CPU build when that is installed and the package itself is not (vci.frameworks
    records the same: the model ran with that build)."""
    cpu = CPU_BUILDS.get(req.name.lower())
    if cpu is None or _is_installed(req.name) or not _is_installed(cpu):
        return req
    log.info("requirement %s: its CPU build %s is installed here, and pinned", req.name, cpu)
    req.name = cpu
    return req


def _is_installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def _refuse_other_pin(req, version: str) -> None:
    """A pin to another version than the installed one: the model was trained (and a local deployment
    would run) with the installed one, while an image would get the pin."""
    try:
        installed = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return  # not installed here: the pin is all there is
    if installed != version:
        raise RequirementError(
            f"{req} pins {req.name} {version}, but {installed} is installed here: a local deployment would "
            f"run {installed} and an image {version}",
            hint=f"pin {req.name}=={installed} (what this model runs with), or install {version} and log again",
        )


def differences(pins: list[str]) -> list[str]:
    """``name: X pinned, Y here`` (or ``not installed here``) for each exact pin this Python does not match."""
    from packaging.requirements import InvalidRequirement, Requirement

    found = []
    for text in pins:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        exact = [s.version for s in req.specifier if s.operator in ("==", "===")]
        if not exact or (req.marker is not None and not req.marker.evaluate()):
            continue
        try:
            here = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            here = None
        if here != exact[0]:
            found.append(f"{req.name}: {exact[0]} pinned, {here or 'not installed'} here")
    return found


def pin_requirements(source) -> list[str]:
    """Pin every requirement, add the automatic ones, and return them sorted by name, one per package."""
    from packaging.utils import canonicalize_name

    by_name: dict[str, str] = {}
    for text in read_requirements(source):
        pinned = pin_requirement(text)
        by_name[canonicalize_name(_name_of(pinned))] = pinned
    for name in AUTOMATIC:
        if canonicalize_name(name) not in by_name:
            version = __version__ if name == "vci" else metadata.version(name)
            by_name[canonicalize_name(name)] = f"{name}=={version}"
    return [by_name[k] for k in sorted(by_name)]


def _name_of(requirement: str) -> str:
    from packaging.requirements import Requirement

    return Requirement(requirement).name


def lock_requirements(pins: list[str]) -> list[dict]:
    """The whole closure of ``pins`` as installed here: ``[{"name", "version"[, "extras"]}]`` sorted by name.

    Each pinned requirement whose marker holds here is followed through the installed distributions'
    own requirements (their markers evaluated here, with the extras asked of them), so the lock holds
    every distribution the model ran with and nothing this Python skips. vci is left out: it ships in
    the image's runtime layer. A direct pin that is not installed here is locked at its pin, marked
    ``"dependencies_locked": false`` (its own requirements are unknown here); any other requirement
    that is not installed cannot be locked (RequirementError naming who needs it)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, dict] = {}
    walked: dict[str, set[str]] = {}  # extras each distribution's requirements were followed with
    pending: list[tuple[Requirement, str | None]] = [(Requirement(text), None) for text in pins]
    while pending:
        req, parent = pending.pop()
        name = canonicalize_name(req.name)
        if name in SKIPPED_IN_LOCK or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        if name not in found:
            found[name] = _locked_entry(req, parent)
        entry = found[name]
        extras = walked.get(name, set()) | {canonicalize_name(e) for e in req.extras}
        if entry.get("dependencies_locked", True) and (name not in walked or extras != walked[name]):
            walked[name] = extras
            if extras:
                entry["extras"] = sorted(extras)
            pending.extend((child, entry["name"]) for child in _requires(name, entry["name"], extras))
    return [found[k] for k in sorted(found)]


SKIPPED_IN_LOCK = ("vci",)


def _locked_entry(req, parent: str | None) -> dict:
    """The lock's record of one requirement's distribution: what is installed, else a direct exact pin."""
    try:
        dist = metadata.distribution(req.name)
    except metadata.PackageNotFoundError:
        exact = [s.version for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
        if parent is not None:
            raise RequirementError(
                f"{parent} requires {req}, which is not installed here: the run's lock cannot name its version",
                hint=f"install {req.name} (the model must run with what its image will hold) and log again",
            ) from None
        if not exact:
            raise RequirementError(
                f"requirement {req} is not installed here and not pinned to one version: the run's lock needs one",
                hint=f"install {req.name} and log again, or pin it ({req.name}==VERSION)",
            ) from None
        log.warning("%s is not installed here: locked at %s, its own dependencies unlocked", req.name, exact[0])
        return {"name": req.name, "version": exact[0], "dependencies_locked": False}
    return {"name": dist.metadata["Name"] or req.name, "version": dist.version}


def _requires(name: str, display: str, extras: set[str]) -> list:
    """The installed distribution's own requirements that hold here with ``extras`` asked of it."""
    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    for text in metadata.distribution(name).requires or []:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            log.warning("%s declares a malformed requirement %r; not locked", display, text)
            continue
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ["", *sorted(extras)]):
            req.marker = None  # evaluated here, with the extras asked of its distribution
            out.append(req)
    return out


def lock_lines(lock: list[dict]) -> list[str]:
    """The lock for people: ``name[extras]==version``, and which entries' own dependencies are not locked."""
    return [
        f"{e['name']}{'[' + ','.join(e['extras']) + ']' if e.get('extras') else ''}=={e['version']}"
        + (
            "  (not installed when logged: its dependencies are not locked)"
            if e.get("dependencies_locked") is False
            else ""
        )
        for e in lock
    ]
