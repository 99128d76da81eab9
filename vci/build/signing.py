"""``vci package`` with a signing key: each pushed image signed, its SBOM and provenance attached beside it.

The evidence is made once per build (vci.build.evidence) and attached in every repository the image was
pushed to (vci.verification.sign_image). An image written only to a layout or an archive is not signed:
cosign's signatures live in a registry (the log says so).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..ledger import ci_context, now_iso
from ..oci.registry import RegistryClient
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


def sign_pushed(run, image, outputs: dict, options: Options, signer: Signer, *, started: str, cache_dir: Path) -> dict:
    """Sign every pushed copy of ``image`` and attach its attestations; ``{key_id, images: [...]}``."""
    pushed = outputs.get("push") or []
    if not pushed:
        log.warning(
            "a signing key is configured, but nothing was pushed: signatures live beside an image in a registry"
        )
        return {"key_id": signer.key_id, "images": []}
    made: dict[str, bytes] = {}
    signed = []
    for push in pushed:
        ref = parse_reference(push["reference"])
        client = RegistryClient(ref.registry, insecure=options.insecure)
        if _signed_already(client, ref.repository, image.digest, signer, cache_dir):
            signed.append({"image": push["reference"], "reused": True})
            log.info("%s is signed by %s already, with its SBOM and provenance", push["reference"], signer.key_id)
            continue
        made = made or _attestations(run, image, options, started, cache_dir)
        subject = subject_descriptor(client, ref.repository, image.digest)
        found = sign_image(client, ref.repository, subject, signer, made)
        signed.append({"image": push["reference"], **found})
        log.info("signed %s with %s (signature, sbom, provenance)", push["reference"], signer.key_id)
    return {"key_id": signer.key_id, "images": signed}


def _signed_already(client: RegistryClient, repo: str, digest: str, signer: Signer, cache_dir: Path) -> bool:
    """Whether ``digest`` in ``repo`` has a valid signature and both attestations by ``signer``'s key (a warm
    re-package of the same image: the first build's provenance still holds, nothing is written again)."""
    found = evidence_report(client, repo, digest, [signer.public_key], cache_dir)
    kinds = {a["predicate_type"] for a in found["attestations"] if a["valid"]}
    return any(s["valid"] for s in found["signatures"]) and {CYCLONEDX_BOM, SLSA_PROVENANCE} <= kinds


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
