"""What a built image says about itself, ready to sign: its SBOM and its SLSA provenance statement.

Both are made from what the build already has: the run (its id, manifest digest and lock), the image,
the base (its reference, digest and, for the SBOM, the dpkg status in its layers), the dependency
directory, and the CI context. The lock's wheel hashes come from the store's record of the first build
of that lock (``wheels.Dependencies.hashes_key``), so the SBOM and the provenance name the very files
installed. ``base_dpkg_status`` reads the base's layers from the top down until one holds
``var/lib/dpkg/status`` (a layer streams from its registry when it has no local copy); with a
``cache_dir`` the answer is kept per base digest, as a warm ``vci package`` must not read the base again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import tarfile
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..digests import hex_of, sha256_bytes
from ..errors import NotFoundError, VciError
from ..files import write_replacing
from ..oci.registry import RegistryClient
from ..oci.stream import chunk_reader
from ..runs import Run
from ..sign.sbom import Component, deb_components, python_components, render_sbom
from ..sign.statement import SLSA_PROVENANCE, canonical_name, provenance_predicate, pypi_purl, statement
from .plan import python_of
from .wheels import Dependencies

DPKG_STATUS = "var/lib/dpkg/status"
_NO_STATUS = "\0none\0"  # cached: the base records no packages
_HIDING = {  # OCI whiteouts that hide a lower layer's status file: of it, of a directory above it, opaque ones
    *(f"{d}/.wh.{n}" for d, n in (("var/lib/dpkg", "status"), ("var/lib", "dpkg"), ("var", "lib"))),
    ".wh.var",
    *(f"{d}/.wh..wh..opq" for d in ("var", "var/lib", "var/lib/dpkg")),
}
log = logging.getLogger("vci")


@dataclasses.dataclass(frozen=True)
class ImageEvidence:
    """The two attestation payloads of one image (the caller signs and attaches them)."""

    sbom: bytes  # CycloneDX 1.6 JSON
    provenance: bytes  # the in-toto Statement bytes (SLSA v1 predicate), subject = the image digest


def image_evidence(
    run: Run,
    image,
    *,
    base_spec: str,
    base_digest: str | None,
    site_dir: Path | None,
    dpkg_status: str | None,
    ci: dict | None,
    started: str,
    finished: str,
    parameters: dict,
    subject_name: str | None = None,
    cache_dir: Path | None = None,
) -> ImageEvidence:
    """The SBOM and provenance of ``image`` (a ``vci.oci.image.Image``) built from ``run``; ``subject_name``
    (default: the run's project) names the image in both. With ``cache_dir`` an SBOM made before for the
    same image and components is reused (the same bytes, without importing the CycloneDX library)."""
    name = subject_name or run.project or "model"
    lock = locked_with_hashes(run, parameters.get("platform", "linux/amd64"))
    components = python_components(site_dir, lock)
    components.append(Component("vci", __version__, "pypi", purl=pypi_purl("vci", __version__)))  # the runtime
    components += deb_components(dpkg_status) if dpkg_status else []
    sbom = _sbom(name, image, components, cache_dir)
    predicate = provenance_predicate(
        builder_version=__version__,
        run_id=run.id,
        model_digest=run.version,
        base_image=base_spec,
        base_digest=base_digest,
        lock=lock,
        ci=ci,
        started=started,
        finished=finished,
        parameters=parameters,
    )
    return ImageEvidence(sbom, statement(name, image.digest, SLSA_PROVENANCE, predicate))


def _sbom(name: str, image, components: list[Component], cache_dir: Path | None) -> bytes:
    """render_sbom's bytes, kept in ``cache_dir`` under the digest of everything they depend on."""
    created = _created(image)
    import cyclonedx  # its version alone (the package's __init__ imports nothing)

    writer = [__version__, cyclonedx.__version__]  # another writer may write other bytes
    described = [(c.name, c.version, c.kind, sorted(c.hashes.items()), c.licenses, c.purl) for c in components]
    inputs = [writer, name, image.digest, created.isoformat(), described]
    key = sha256_bytes(json.dumps(inputs, sort_keys=True).encode())
    cached = Path(cache_dir) / "sbom" / f"{hex_of(key)}.json" if cache_dir else None
    if cached is not None and cached.is_file():
        return cached.read_bytes()
    sbom = render_sbom(name, image.digest, components, timestamp=created)
    if cached is not None:
        write_replacing(cached, sbom)
    return sbom


def locked_with_hashes(run: Run, platform: str) -> list[dict]:
    """The run's lock (what the image installs: vci itself is not among it), each entry with the sha256
    of its wheel as the store recorded it for this Python and platform, when it did."""
    deps = Dependencies(run.manifest, python_of(run.manifest), platform)
    try:
        record = run.store.get_json(deps.hashes_key())
    except NotFoundError:
        record = {}
    wheels = record.get("wheels") if isinstance(record, dict) else None
    wheels = wheels if isinstance(wheels, dict) else {}
    entries = []
    for entry in deps.lock or []:
        wheel = wheels.get(canonical_name(entry["name"])) or {}
        sha256 = wheel.get("sha256") if isinstance(wheel, dict) else None
        entries.append({**entry, **({"hashes": {"sha256": sha256}} if sha256 else {})})
    return entries


def _created(image) -> datetime:
    created = image.config.get("created") or "1970-01-01T00:00:00Z"
    return datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def base_dpkg_status(base_image, *, cache_dir: Path | None = None) -> str | None:
    """``var/lib/dpkg/status`` as the base image has it (the topmost layer holding it wins), or None when
    no layer does, one deletes it, or a layer cannot be read (a warning then: the SBOM goes without)."""
    cached = Path(cache_dir) / f"dpkg-status-{hex_of(base_image.digest)}.txt" if cache_dir else None
    if cached is not None and cached.is_file():
        text = cached.read_text(encoding="utf-8", errors="replace")
        return None if text == _NO_STATUS else text
    try:
        found = _status_in_layers(base_image)
    except (OSError, tarfile.TarError, VciError) as exc:
        log.warning("could not read the base image's packages (%s): the SBOM lists its Python ones only", exc)
        return None
    if cached is not None:
        write_replacing(cached, _NO_STATUS if found is None else found)
    return found


def _status_in_layers(base_image) -> str | None:
    for layer in reversed(base_image.layers):
        hidden = False
        with _open_layer(layer) as blob, tarfile.open(fileobj=blob, mode="r|*") as tar:
            for member in tar:
                path = re.sub(r"^(\./|/)+", "", member.name)
                if path == DPKG_STATUS and member.isfile():
                    data = tar.extractfile(member)
                    return data.read().decode("utf-8", errors="replace") if data else None
                hidden = hidden or path in _HIDING
        if hidden:  # deleted, or a directory on its way replaced, above every lower layer
            return None
    return None


def _open_layer(layer):
    if layer.path is not None:
        return layer.open()
    registry, _, repository = (layer.origin or "").partition("/")
    if not repository:
        raise OSError(f"layer {layer.digest} has neither local bytes nor a registry to stream it from")
    return chunk_reader(RegistryClient(registry).get_blob(repository, layer.digest), errors=(VciError,))
