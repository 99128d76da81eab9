"""A CycloneDX 1.6 JSON SBOM of one image, written with cyclonedx-python-lib: its Python distributions
(from the dependency directory's ``*.dist-info``, hashes from the lock) and the base's Debian packages.

The same image gives the same bytes: the serial number is a UUID made from the image digest, the
timestamp is passed in (or the Unix epoch), components are sorted and each one's ``bom-ref`` is its
purl. A distribution's licence is its ``License-Expression`` (PEP 639), else its ``License`` field when
that is a short name (not the whole licence text some projects put there), else its
``License :: ...`` classifiers. A Debian package's licence lives in a copyright file the status does not
name, so it is left out; dpkg records no hash of a package either.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path

from ..digests import hex_of
from . import canonical_json
from .statement import canonical_name, lock_hashes, pypi_purl

SPEC_VERSION = "1.6"
_HASH_NAMES = {"sha256": "SHA-256", "sha384": "SHA-384", "sha512": "SHA-512", "sha1": "SHA-1", "md5": "MD5"}
_MAX_LICENSE_NAME = 80
_INSTALLED = "install ok installed"


@dataclasses.dataclass(frozen=True)
class Component:
    """One package in the image: ``kind`` is ``pypi`` or ``deb``; ``hashes`` maps an algorithm to hex."""

    name: str
    version: str
    kind: str
    hashes: dict[str, str] = dataclasses.field(default_factory=dict)
    licenses: tuple[str, ...] = ()
    purl: str = ""


def python_components(site_dir: Path | None, lock: list[dict]) -> list[Component]:
    """Every distribution installed in ``site_dir`` (none when it is None), its wheel's hashes from the
    lock entry of the same name and version when there is one."""
    if site_dir is None:
        return []
    locked = {(canonical_name(e["name"]), e["version"]): e for e in lock}
    found = []
    for info in sorted(Path(site_dir).glob("*.dist-info")):
        meta = _metadata(info)
        if meta is None:
            continue
        name, version = meta["Name"][0], meta["Version"][0]
        entry = locked.get((canonical_name(name), version), {})
        found.append(Component(name, version, "pypi", lock_hashes(entry), _licenses(meta), pypi_purl(name, version)))
    return sorted(found, key=lambda c: (canonical_name(c.name), c.version))


def _metadata(info: Path) -> dict[str, list[str]] | None:
    """The header fields of a ``METADATA`` file (``{field: [values]}``; the body, a description, unread);
    None without a name and version. A plain reader: email.parser takes 40x as long for these."""
    try:
        with open(info / "METADATA", encoding="utf-8", errors="replace") as f:
            lines = list(itertools.takewhile(lambda line: line.strip(), f))  # up to the blank line ending them
    except OSError:
        return None
    fields: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in lines:
        if line[:1] in (" ", "\t") and last is not None:  # a continuation of the field above
            last[-1] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            last = fields.setdefault(key.strip(), [])
            last.append(value.strip())
    return fields if fields.get("Name") and fields.get("Version") else None


def _licenses(meta: dict[str, list[str]]) -> tuple[str, ...]:
    expression = (meta.get("License-Expression") or [""])[0]
    if expression:
        return (expression,)
    field = (meta.get("License") or [""])[0]
    if field and "\n" not in field and len(field) <= _MAX_LICENSE_NAME and field.upper() != "UNKNOWN":
        return (field,)
    classifiers = meta.get("Classifier") or []
    named = [c.split("::")[-1].strip() for c in classifiers if c.startswith("License ::") and c.count("::") >= 2]
    return tuple(dict.fromkeys(n for n in named if n))


def deb_components(dpkg_status: str, distro: str = "debian") -> list[Component]:
    """The installed packages of a dpkg status file (``/var/lib/dpkg/status``), as ``pkg:deb`` purls."""
    found = []
    for paragraph in re.split(r"\n\s*\n", dpkg_status):
        fields = _deb_fields(paragraph)
        if fields.get("Status") != _INSTALLED or not fields.get("Package") or not fields.get("Version"):
            continue
        name, version, arch = fields["Package"], fields["Version"], fields.get("Architecture", "")
        purl = f"pkg:deb/{distro}/{name}@{_purl_escape(version)}" + (f"?arch={arch}" if arch else "")
        found.append(Component(name, version, "deb", purl=purl))
    return sorted(found, key=lambda c: (c.name, c.version))


def _deb_fields(paragraph: str) -> dict[str, str]:
    fields = {}
    for line in paragraph.splitlines():
        if line and not line[0].isspace() and ":" in line:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


def _purl_escape(version: str) -> str:
    return version.replace("%", "%25").replace(":", "%3A").replace("+", "%2B")


def render_sbom(
    subject_name: str, subject_digest: str, components: list[Component], *, timestamp: datetime | None = None
) -> bytes:
    """The CycloneDX 1.6 JSON of an image ``subject_name`` at ``subject_digest`` holding ``components``."""
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component as BomComponent
    from cyclonedx.model.component import ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    hex_of(subject_digest)  # refuses what is no sha256 digest
    image = BomComponent(
        name=subject_name, version=subject_digest, type=ComponentType.CONTAINER, bom_ref=f"image@{subject_digest}"
    )
    bom = Bom(
        serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"https://github.com/vci-dev/vci/sbom/{subject_digest}"),
        metadata=BomMetaData(component=image, timestamp=timestamp or datetime.fromtimestamp(0, tz=timezone.utc)),
    )
    entries = sorted({c.purl or f"{c.kind}:{c.name}@{c.version}": c for c in components}.items())
    contents = [_bom_component(component, ref) for ref, component in entries]
    bom.components.update(contents)
    bom.register_dependency(image, contents)  # the image holds them all (no graph between them is claimed)
    return canonical_json(json.loads(JsonV1Dot6(bom).output_as_string()))


def _bom_component(component: Component, ref: str):
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.component import Component as BomComponent
    from cyclonedx.model.component import ComponentType
    from packageurl import PackageURL

    hashes = [
        HashType(alg=HashAlgorithm(_HASH_NAMES[alg]), content=value)
        for alg, value in sorted(component.hashes.items())
        if alg in _HASH_NAMES
    ]
    factory = LicenseFactory()
    return BomComponent(
        name=component.name,
        version=component.version,
        type=ComponentType.LIBRARY,
        purl=PackageURL.from_string(component.purl) if component.purl else None,
        bom_ref=ref,
        hashes=hashes,
        licenses=[factory.make_from_string(text) for text in component.licenses],
    )
