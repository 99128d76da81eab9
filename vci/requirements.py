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
