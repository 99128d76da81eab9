"""Images' evidence in their registry signed, read and checked against an environment's policy.

``sign_image`` signs an image (or index) digest with cosign's simple-signing payload and attaches its
attestations (in-toto statements in DSSE envelopes) beside it (vci.oci.evidence); ``evidence_report``
reads and checks every piece for ``vci verify``; ``check_image`` applies a ``vci.trust.Policy``, and
``check_deployable`` is the one check deploy, promote and rollback make before they change anything.
Kept apart from vci.trust so that a model server, which checks only its run's signature, does not
import the registry client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

from .errors import UsageError, VerificationError
from .oci import OCI_MANIFEST, Descriptor
from .oci.evidence import attach, attestation_layer, read_evidence, signature_layer
from .oci.registry import RegistryClient
from .refs import parse_reference
from .runs import resolve_run
from .sign import dsse, simplesigning, statement
from .sign.keys import PublicKey, Signer, trusted_key
from .trust import Policy, Verified, check_run, only_subject, signer_for

# -- images --------------------------------------------------------------------------------------------


def sign_image(
    client: RegistryClient, repo: str, subject: Descriptor, signer: Signer, attestations: Mapping[str, bytes]
) -> dict:
    """Sign ``subject`` (an image or index in ``repo``) and attach ``attestations`` ({predicate type:
    in-toto statement bytes}), each in a DSSE envelope; return the evidence manifests' digests."""
    reference = f"{client.registry}/{repo}"
    payload = simplesigning.simple_signing_payload(reference, subject.digest)
    mine = (signer.public_key,)
    signed = [e for e in read_evidence(client, repo, subject.digest, ".sig") if e.data == payload]
    new = (
        []
        if any(trusted_key(mine, e.data, e.signature) for e in signed)
        else [signature_layer(payload, signer.sign(payload))]
    )
    out = {"signature": attach(client, repo, subject, ".sig", new)}  # signing again adds no second signature
    layers = [
        attestation_layer(json.dumps(dsse.sign_envelope(dsse.INTOTO_PAYLOAD_TYPE, body, signer)).encode(), kind)
        for kind, body in attestations.items()
    ]
    if layers:  # this key's earlier attestation of a kind is replaced by the new one (a rebuild's provenance)
        out["attestations"] = attach(
            client, repo, subject, ".att", layers, replaces=partial(_by, mine, set(attestations))
        )
    return out


def sign_reference(settings, what: str, *, insecure: bool | None = None) -> dict:
    """Sign the image or index ``what`` (``IMAGE@DIGEST``: one built elsewhere, or one of vci's again) with
    the configured key (VCI_SIGNING_KEY, VCI_SIGNING_KEY_FILE or ``signing_key:``). Only a signature: vci
    did not build it, so it attests nothing of how it was built (an environment that requires an SBOM or
    provenance still refuses it)."""
    signer = signer_for(settings)
    if signer is None:
        raise UsageError(
            "no signing key is configured",
            hint="set VCI_SIGNING_KEY or VCI_SIGNING_KEY_FILE, or signing_key: in vci.yaml (`vci keys generate`)",
        )
    ref = parse_reference(what)
    if not ref.digest:
        raise UsageError(f"{what} names no digest", hint="sign IMAGE@sha256:... (a signature signs a digest)")
    client = RegistryClient(ref.registry, insecure=insecure)
    out = sign_image(client, ref.repository, subject_descriptor(client, ref.repository, ref.digest), signer, {})
    return {"subject": f"{ref.registry}/{ref.repository}@{ref.digest}", "key_id": signer.key_id, **out}


def _by(keys: tuple[PublicKey, ...], kinds: set[str], layer) -> bool:
    """Whether ``layer`` is an attestation of one of ``kinds`` signed by one of ``keys``."""
    if layer.annotations.get("predicateType") not in kinds:
        return False
    try:
        dsse.open_envelope(layer.data, keys)
    except VerificationError:
        return False
    return True


def evidence_report(
    client: RegistryClient, repo: str, digest: str, keys: Sequence[PublicKey], cache_dir: Path | None = None
) -> dict:
    """Everything attached to ``digest``, each piece checked: ``{"signatures": [...], "attestations": [...]}``,
    every entry with ``valid`` and, when not, ``problem`` (for ``vci verify``); ``cache_dir`` keeps the
    blobs read (see ``read_evidence``)."""
    sig, att = (read_evidence(client, repo, digest, suffix, cache_dir=cache_dir) for suffix in (".sig", ".att"))
    signatures = [_signature_entry(e, digest, keys) for e in sig]
    attestations = [_attestation_entry(e, digest, keys) for e in att]
    return {"subject": digest, "signatures": signatures, "attestations": attestations}


def _signature_entry(layer, digest: str, keys) -> dict:
    entry: dict = {"payload_digest": layer.digest, "valid": False}
    try:
        reference, signed = simplesigning.read_simple_signing(layer.data)
    except VerificationError as exc:
        return {**entry, "problem": exc.message}
    entry["docker_reference"] = reference
    key = trusted_key(keys, layer.data, layer.signature)
    if signed != digest:
        return {**entry, "problem": f"signs {signed}, not {digest}"}
    if key is None:
        return {**entry, "problem": "not signed by a trusted key"}
    return {**entry, "valid": True, "key_id": key.key_id}


def _attestation_entry(layer, digest: str, keys) -> dict:
    entry: dict = {"digest": layer.digest, "predicate_type": layer.annotations.get("predicateType"), "valid": False}
    try:
        _, payload, key = dsse.open_envelope(layer.data, keys)
        doc = statement.read_statement(payload)
        subject = only_subject(doc)
    except VerificationError as exc:
        return {**entry, "problem": exc.message}
    entry["predicate_type"] = doc.get("predicateType")
    if subject != digest:
        return {**entry, "problem": f"attests {subject}, not {digest}"}
    return {**entry, "valid": True, "key_id": key.key_id, "predicate": doc.get("predicate")}


def check_image(policy: Policy | None, client: RegistryClient, repo: str, digest: str) -> Verified | None:
    """The image's evidence against ``policy`` (None when there is none); VerificationError naming the
    first requirement that does not hold: unsigned, untrusted key, missing or mismatched attestation,
    provenance from another builder or repository."""
    if policy is None:
        return None
    found = evidence_report(client, repo, digest, policy.keys)
    where = f"{client.registry}/{repo}@{digest[:19]}"
    signed_by = [s["key_id"] for s in found["signatures"] if s["valid"]]
    if "signature" in policy.require and not signed_by:
        raise VerificationError(f"image {where} {_why_unsigned(found['signatures'])}", hint=SIGN_HINT)
    kinds = [kind for kind in ("sbom", "provenance") if kind in policy.require]
    attested = []
    if kinds:
        for image in _platform_images(client, repo, digest):  # an index's attestations are its images'
            found = found if image == digest else evidence_report(client, repo, image, policy.keys)
            at = where if image == digest else f"{where} (its image {image[:19]})"
            attested += [_required_attestation(found["attestations"], kind, at, policy) for kind in kinds]
    return Verified(digest, signed_by, attested)


def _platform_images(client: RegistryClient, repo: str, digest: str) -> list[str]:
    """The image digests ``digest`` stands for: itself, or an index's images (each platform's)."""
    data, media_type, _ = client.get_manifest(repo, digest)
    manifest = json.loads(data)
    return [m["digest"] for m in manifest["manifests"]] if "manifests" in manifest else [digest]


SIGN_HINT = (
    "package it with a signing key (VCI_SIGNING_KEY or signing_key:) whose public key the environment trusts, "
    "or sign an image built elsewhere with `vci sign IMAGE@DIGEST`"
)
ATTEST_HINT = (
    "package it with a signing key (VCI_SIGNING_KEY or signing_key:) whose public key the environment trusts: "
    "vci attests the images it builds (an image built elsewhere has no SBOM or provenance of vci's)"
)
PREDICATES = {"sbom": statement.CYCLONEDX_BOM, "provenance": statement.SLSA_PROVENANCE}


def _why_unsigned(signatures: list[dict]) -> str:
    if not signatures:
        return "is not signed"
    return "has no valid signature: " + "; ".join(s.get("problem", "?") for s in signatures)


def _required_attestation(attestations: list[dict], kind: str, where: str, policy: Policy) -> dict:
    wanted = [a for a in attestations if a["predicate_type"] == PREDICATES[kind]]
    valid = [a for a in wanted if a["valid"]]
    if not valid:
        problem = "; ".join(a.get("problem", "?") for a in wanted) or "none attached"
        raise VerificationError(f"image {where} has no valid {kind} attestation ({problem})", hint=ATTEST_HINT)
    if kind == "provenance":
        _check_provenance(valid[0]["predicate"] or {}, where, policy)
    return {k: valid[0][k] for k in ("predicate_type", "digest", "key_id")}


def _check_provenance(predicate: dict, where: str, policy: Policy) -> None:
    builder = ((predicate.get("runDetails") or {}).get("builder") or {}).get("id")
    if policy.builder and builder != policy.builder:
        raise VerificationError(f"image {where} was built by {builder!r}, and the policy trusts {policy.builder!r}")
    if policy.repository:
        repository = provenance_repository(predicate)
        if repository != policy.repository:
            raise VerificationError(
                f"image {where}'s provenance names the repository {repository!r}, not {policy.repository!r}",
                hint="only images built by that repository's CI may be deployed here",
            )


def provenance_repository(predicate: dict) -> str | None:
    """The source repository a provenance predicate names (the CI context's), None when it names none."""
    internal = (predicate.get("buildDefinition") or {}).get("internalParameters") or {}
    return (internal.get("ci") or {}).get("repository")


def subject_descriptor(client: RegistryClient, repo: str, digest: str) -> Descriptor:
    data, media_type, _ = client.get_manifest(repo, digest)
    return Descriptor(media_type or OCI_MANIFEST, digest, len(data))


def check_deployable(settings, environment, what, *, insecure: bool | None = None) -> Verified | None:
    """What ``environment``'s policy asks of ``what`` (an ``IMAGE@DIGEST`` reference or a Run), checked;
    None when the environment has no policy. SBOM and provenance are an image's: an environment that
    requires them refuses a run (which a cluster deploy would build unattested)."""
    policy = Policy.of(environment, settings.base_dir)
    return None if policy is None else check_policy(policy, environment, what, insecure=insecure)


def check_policy(policy: Policy, environment, what, *, insecure: bool | None = None) -> Verified | None:
    """``check_deployable`` with the environment's policy already loaded (its keys read once)."""
    if isinstance(what, str):
        ref = parse_reference(what)
        client = RegistryClient(ref.registry, insecure=environment.insecure if insecure is None else insecure)
        return check_image(policy, client, ref.repository, ref.digest or "")
    image_only = sorted(policy.require & {"sbom", "provenance"})
    if image_only:
        raise VerificationError(
            f"environment {environment.name!r} requires {' and '.join(image_only)} attestations, which a run "
            f"({what.id}) does not have",
            hint="deploy the image `vci package --push REPO` built and attested (IMAGE@DIGEST) instead",
        )
    return check_run(policy, what.store, what.manifest)


def verify(settings, what: str, *, keys: Sequence[PublicKey] = (), env: str | None = None, insecure=None) -> dict:
    """``vci verify``: every piece of evidence of ``what`` (``IMAGE@DIGEST`` or a run), each checked against
    ``keys`` (or ``env``'s policy keys), and whether ``env``'s policy holds: ``{subject, kind, keys,
    signatures, attestations, verified, problem}``. Nothing is changed."""
    environment = settings.environment(env) if env else None
    policy = Policy.of(environment, settings.base_dir) if environment is not None else None
    trusted = tuple(keys) or (policy.keys if policy else ())
    if not trusted:
        raise VerificationError(
            "no key to verify with", hint="give --key PUB.pem, or --env ENV whose verify: setting lists keys"
        )
    report = _evidence_of(settings, what, trusted, insecure)
    report["keys"] = [k.key_id for k in trusted]
    try:
        if environment is not None and policy is not None:
            deployable = what if "@" in what else resolve_run(settings, what)
            check_policy(policy, environment, deployable, insecure=insecure)
        elif not any(s["valid"] for s in report["signatures"]):
            raise VerificationError(f"{what} has no valid signature by the given keys")
    except VerificationError as exc:
        return {**report, "verified": False, "problem": exc.message}
    return {**report, "verified": True, "problem": None}


def _evidence_of(settings, what: str, keys: Sequence[PublicKey], insecure) -> dict:
    if "@" in what:
        ref = parse_reference(what)
        if not ref.digest:
            raise VerificationError(f"{what} names no digest", hint="verify IMAGE@sha256:... (signatures sign digests)")
        client = RegistryClient(ref.registry, insecure=insecure)
        return {"kind": "image", **evidence_report(client, ref.repository, ref.digest, keys)}
    run = resolve_run(settings, what)
    entry: dict = {"run_id": run.id, "valid": False}
    try:
        entry.update(valid=True, key_id=run.verify(keys).signed_by[0])
    except VerificationError as exc:
        entry["problem"] = exc.message
    return {"kind": "run", "subject": run.version, "signatures": [entry], "attestations": []}
