"""What an environment trusts: signed run manifests, signed and attested images, and the policy that asks for them.

A run manifest is signed as an in-toto Statement whose subject is the manifest's digest (the model
version), in a DSSE envelope stored at ``signatures/sha256/<hex>.dsse.json`` beside the runs: named by
what it signs, so an edited manifest (a new digest) has no signature at all. An image's evidence is in
its registry (vci.oci.evidence). A ``Policy`` (an environment's ``verify:`` setting) names the trusted
public keys and what must be there; ``check_run`` and ``check_image`` return what was verified, for the
ledger, or raise VerificationError naming the first thing that does not hold. Nothing here changes state.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .digests import hex_of
from .errors import NotFoundError, VerificationError
from .modeldir import manifest_digest
from .oci import OCI_MANIFEST, Descriptor
from .oci.evidence import attach, attestation_layer, read_evidence, signature_layer
from .oci.registry import RegistryClient
from .sign import dsse, simplesigning, statement
from .sign.keys import PublicKey, Signer, load_public_keys, trusted_key
from .store.base import Store

RUN_PREDICATE = "https://vci.dev/attestations/run/v1"
TRUSTED_KEYS_ENV = "VCI_TRUSTED_KEYS"  # the server's trusted keys: PEM text, several concatenated
RUN_SIGNATURE_ENV = "VCI_RUN_SIGNATURE"  # an image's run signature (its envelope), beside VCI_RUN_MANIFEST


@dataclass(frozen=True)
class Policy:
    """An environment's ``verify:`` setting, its keys loaded."""

    keys: tuple[PublicKey, ...]
    require: frozenset[str] = frozenset({"signature"})
    builder: str | None = None
    repository: str | None = None

    @classmethod
    def of(cls, environment, base_dir: Path | None = None) -> Policy | None:
        """The policy of ``environment`` (None when it has no ``verify:``); key paths are relative to vci.yaml."""
        values = getattr(environment, "verify", None) or {}
        if not values:
            return None
        sources = [_key_source(k, base_dir) for k in values.get("keys") or []]
        provenance = values.get("provenance") or {}
        return cls(
            keys=tuple(load_public_keys(sources)),
            require=frozenset(values.get("require") or ["signature"]),
            builder=provenance.get("builder"),
            repository=provenance.get("repository"),
        )


@dataclass(frozen=True)
class Verified:
    """What a check found to hold: the subject's digest, the keys that signed it, each attestation."""

    subject: str
    signed_by: list[str] = field(default_factory=list)
    attestations: list[dict] = field(default_factory=list)  # {"predicate_type", "digest", "key_id", "summary"}

    def to_json(self) -> dict:
        return {"subject": self.subject, "signed_by": self.signed_by, "attestations": self.attestations}


def _key_source(source: str, base_dir: Path | None) -> str | Path:
    if source.lstrip().startswith("-----BEGIN"):
        return source.encode()
    path = Path(os.path.expanduser(source))
    return path if path.is_absolute() or base_dir is None else base_dir / path


def keys_from_environ(environ: Mapping[str, str] = os.environ) -> tuple[PublicKey, ...]:
    """The trusted keys a model server was given (``VCI_TRUSTED_KEYS``: PEM blocks), none when unset."""
    text = environ.get(TRUSTED_KEYS_ENV, "")
    blocks = [b + "-----END PUBLIC KEY-----\n" for b in text.split("-----END PUBLIC KEY-----") if "BEGIN" in b]
    return tuple(load_public_keys([b.strip().encode() + b"\n" for b in blocks]))


def keys_to_environ(keys: Sequence[PublicKey]) -> str:
    return "".join(k.pem.decode() for k in keys)


# -- runs ----------------------------------------------------------------------------------------------


def run_signature_key(digest: str) -> str:
    return f"signatures/sha256/{hex_of(digest)}.dsse.json"


def run_statement(manifest: dict) -> bytes:
    return statement.statement(
        f"run:{manifest['id']}", manifest_digest(manifest), RUN_PREDICATE, {"project": manifest.get("project")}
    )


def sign_run(store: Store, manifest: dict, signer: Signer) -> dict:
    """Sign ``manifest`` (before it is committed: a signed run is never seen unsigned); return the envelope."""
    envelope = dsse.sign_envelope(dsse.INTOTO_PAYLOAD_TYPE, run_statement(manifest), signer)
    store.put_json(run_signature_key(manifest_digest(manifest)), envelope)
    return envelope


def read_run_signature(store: Store, digest: str) -> dict | None:
    try:
        return store.get_json(run_signature_key(digest))
    except NotFoundError:
        return None


def verify_run_envelope(manifest: dict, envelope: dict | None, keys: Sequence[PublicKey]) -> Verified:
    """That ``envelope`` is a trusted key's signature of exactly ``manifest``; VerificationError otherwise."""
    digest = manifest_digest(manifest)
    if envelope is None:
        raise VerificationError(
            f"run {manifest.get('id')} is not signed (no signature of its manifest {digest[:19]})",
            hint="the policy asks for signed runs: log it with a signing key (VCI_SIGNING_KEY, signing_key:), "
            "or the manifest was edited after it was signed",
        )
    _, payload, key = dsse.open_envelope(envelope, keys)
    subject = _only_subject(statement.read_statement(payload))
    if subject != digest:
        raise VerificationError(
            f"run {manifest.get('id')}'s signature is for manifest {subject[:19]}, not {digest[:19]}",
            hint="the manifest in the store was changed after it was signed: do not deploy it; log the run again",
        )
    return Verified(digest, [key.key_id])


def check_run(policy: Policy | None, store: Store, manifest: dict) -> Verified | None:
    """The run's signature checked when ``policy`` asks for signatures (None when it asks nothing)."""
    if policy is None or "signature" not in policy.require:
        return None
    return verify_run_envelope(manifest, read_run_signature(store, manifest_digest(manifest)), policy.keys)


def _only_subject(doc: dict) -> str:
    subjects = doc.get("subject") or []
    if len(subjects) != 1 or "sha256" not in (subjects[0].get("digest") or {}):
        raise VerificationError("the signed statement does not name exactly one sha256 subject")
    return "sha256:" + subjects[0]["digest"]["sha256"]


# -- images --------------------------------------------------------------------------------------------


def sign_image(
    client: RegistryClient, repo: str, subject: Descriptor, signer: Signer, attestations: Mapping[str, bytes]
) -> dict:
    """Sign ``subject`` (an image or index in ``repo``) and attach ``attestations`` ({predicate type:
    in-toto statement bytes}), each in a DSSE envelope; return the evidence manifests' digests."""
    reference = f"{client.registry}/{repo}"
    payload = simplesigning.simple_signing_payload(reference, subject.digest)
    out = {"signature": attach(client, repo, subject, ".sig", [signature_layer(payload, signer.sign(payload))])}
    layers = [
        attestation_layer(json.dumps(dsse.sign_envelope(dsse.INTOTO_PAYLOAD_TYPE, body, signer)).encode(), kind)
        for kind, body in attestations.items()
    ]
    if layers:
        out["attestations"] = attach(client, repo, subject, ".att", layers)
    return out


def image_evidence(client: RegistryClient, repo: str, digest: str, keys: Sequence[PublicKey]) -> dict:
    """Everything attached to ``digest``, each piece checked: ``{"signatures": [...], "attestations": [...]}``,
    every entry with ``valid`` and, when not, ``problem`` (for ``vci verify``)."""
    signatures = [_signature_entry(e, digest, keys) for e in read_evidence(client, repo, digest, ".sig")]
    attestations = [_attestation_entry(e, digest, keys) for e in read_evidence(client, repo, digest, ".att")]
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
        subject = _only_subject(doc)
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
    found = image_evidence(client, repo, digest, policy.keys)
    where = f"{client.registry}/{repo}@{digest[:19]}"
    signed_by = [s["key_id"] for s in found["signatures"] if s["valid"]]
    if "signature" in policy.require and not signed_by:
        raise VerificationError(f"image {where} {_why_unsigned(found['signatures'])}", hint=SIGN_HINT)
    attested = []
    for kind in ("sbom", "provenance"):
        if kind in policy.require:
            attested.append(_required_attestation(found["attestations"], kind, where, policy))
    return Verified(digest, signed_by, attested)


SIGN_HINT = "package it with a signing key (VCI_SIGNING_KEY or signing_key:) whose public key the environment trusts"
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
        raise VerificationError(f"image {where} has no valid {kind} attestation ({problem})", hint=SIGN_HINT)
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
    external = (predicate.get("buildDefinition") or {}).get("externalParameters") or {}
    ci = external.get("ci") or {}
    return ci.get("repository") or external.get("repository")


def subject_descriptor(client: RegistryClient, repo: str, digest: str) -> Descriptor:
    data, media_type, _ = client.get_manifest(repo, digest)
    return Descriptor(media_type or OCI_MANIFEST, digest, len(data))
