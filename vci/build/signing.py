"""``vci package`` with a signing key: each pushed image signed, its SBOM and provenance attached beside it.

The evidence is made once per build (vci.build.evidence) and attached in every repository the image was
pushed to (vci.verification.sign_image). An image written only to a layout or an archive is not signed:
cosign's signatures live in a registry (the log says so).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from ..ledger import ci_context, now_iso
from ..oci.image import Index, images_of
from ..oci.registry import RegistryClient, RegistryClients
from ..refs import parse_reference
from ..sign.keys import Signer
from ..sign.statement import CYCLONEDX_BOM, SLSA_PROVENANCE, statement
from ..verification import evidence_report, sign_image, subject_descriptor
from . import Options
from .evidence import base_dpkg_status, image_evidence
from .image import resolve_base
from .plan import python_of
from .wheels import Dependencies

log = logging.getLogger("vci")


def sign_pushed(
    run, image, outputs: dict, options: Options, signer: Signer, *, started: str, cache_dir: Path, clients=None
) -> dict:
    """Sign every pushed copy of ``image`` and attach its attestations; ``{key_id, images: [...]}``. An index
    is signed itself, and each of its platform images signed and attested as a single image is."""
    pushed = outputs.get("push") or []
    if not pushed:
        log.warning(
            "a signing key is configured, but nothing was pushed: signatures live beside an image in a registry"
        )
        return {"key_id": signer.key_id, "images": []}
    job = _Signing(run, options, signer, started, cache_dir)
    signed = []
    for push in pushed:
        ref = parse_reference(push["reference"])
        client = (RegistryClients() if clients is None else clients).get(ref.registry, options.insecure)
        signed += [job.sign(client, ref.repository, each) for each in images_of(image)]
        if isinstance(image, Index):
            signed.append(job.sign(client, ref.repository, image))
    return {"key_id": signer.key_id, "images": signed}


@dataclasses.dataclass
class _Signing:
    """One package's signing: what it needs, and the attestations made (once per image digest)."""

    run: object
    options: Options
    signer: Signer
    started: str
    cache_dir: Path
    made: dict[str, dict[str, bytes]] = dataclasses.field(default_factory=dict)

    def sign(self, client: RegistryClient, repo: str, image) -> dict:
        """Sign an image (with its SBOM and provenance) or an index (a signature) in ``repo``, unless it is."""
        reference, signer = f"{client.registry}/{repo}@{image.digest}", self.signer
        kinds = set() if isinstance(image, Index) else {CYCLONEDX_BOM, SLSA_PROVENANCE}
        if _signed_already(client, repo, image.digest, signer, self.cache_dir, kinds):
            log.info("%s is signed by %s already (and attested)", reference, signer.key_id)
            return {"image": reference, "reused": True}
        if kinds and image.digest not in self.made:
            options = dataclasses.replace(self.options, platform=image.platform or self.options.platform)
            self.made[image.digest] = _attestations(self.run, image, options, self.started, self.cache_dir)
        subject = subject_descriptor(client, repo, image.digest)
        found = sign_image(client, repo, subject, signer, self.made.get(image.digest, {}))
        log.info("signed %s with %s%s", reference, signer.key_id, " (with its SBOM and provenance)" if kinds else "")
        return {"image": reference, **found}


def _signed_already(
    client: RegistryClient, repo: str, digest: str, signer: Signer, cache_dir: Path, kinds: set[str]
) -> bool:
    """Whether ``digest`` in ``repo`` has a valid signature and the attestations of ``kinds`` by ``signer``'s
    key (a warm re-package of the same image: the first build's provenance still holds; nothing is
    written again)."""
    found = evidence_report(client, repo, digest, [signer.public_key], cache_dir)
    valid = {a["predicate_type"] for a in found["attestations"] if a["valid"]}
    return any(s["valid"] for s in found["signatures"]) and kinds <= valid


def _attestations(run, image, options: Options, started: str, cache_dir: Path) -> dict[str, bytes]:
    """``{predicate type: in-toto statement}`` of the image: its CycloneDX SBOM and SLSA provenance."""
    base, spec = resolve_base(options.base, python_of(run.manifest), options.platform, options.insecure)
    deps = Dependencies(run.manifest, python_of(run.manifest), options.platform)
    site = cache_dir / "deps" / deps.key()
    evidence = image_evidence(
        run,
        image,
        base_spec=spec,
        base_digest=base.digest,
        site_dir=site if (site / ".complete").is_file() else None,
        dpkg_status=base_dpkg_status(base, cache_dir=cache_dir),
        ci=ci_context(),
        started=started,
        finished=now_iso(),
        parameters={"platform": options.platform, "compression_level": options.level, "builder": options.builder},
        cache_dir=cache_dir,  # the same image again (a warm package): the SBOM made before, no CycloneDX import
    )
    name = run.project or "model"
    sbom = statement(name, image.digest, CYCLONEDX_BOM, json.loads(evidence.sbom))
    return {CYCLONEDX_BOM: sbom, SLSA_PROVENANCE: evidence.provenance}
