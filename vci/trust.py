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
from typing import TYPE_CHECKING

from .digests import hex_of
from .errors import NotFoundError, VerificationError
from .modeldir import manifest_digest
from .sign import dsse, statement
from .sign.keys import PublicKey, Signer, configured_signer, load_public_keys

if TYPE_CHECKING:  # the model server imports this module, and no store
    from .store.base import Store

RUN_PREDICATE = "https://vci.dev/attestations/run/v1"
TRUSTED_KEYS_ENV = "VCI_TRUSTED_KEYS"  # the server's trusted keys: PEM text, several concatenated


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


def _key_source(source: str, base_dir: Path | None) -> bytes | Path:
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
    try:
        _, payload, key = dsse.open_envelope(envelope, keys)
        subject = only_subject(statement.read_statement(payload))
    except VerificationError as exc:
        raise VerificationError(f"run {manifest.get('id')}: {exc.message}", hint=exc.hint) from None
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


def only_subject(doc: dict) -> str:
    subjects = doc.get("subject") or []
    if len(subjects) != 1 or "sha256" not in (subjects[0].get("digest") or {}):
        raise VerificationError("the signed statement does not name exactly one sha256 subject")
    return "sha256:" + subjects[0]["digest"]["sha256"]


# -- wiring --------------------------------------------------------------------------------------------


def signer_for(settings) -> Signer | None:
    """The signer configured for ``settings``: VCI_SIGNING_KEY, VCI_SIGNING_KEY_FILE, else ``signing_key:``
    (a relative path read from vci.yaml's directory); None when none is."""
    setting = getattr(settings, "signing_key", None)
    if setting and not setting.startswith("env:"):
        path = Path(os.path.expanduser(setting.removeprefix("file:")))
        base = getattr(settings, "base_dir", None)
        setting = str(path if path.is_absolute() or base is None else base / path)
    return configured_signer(setting)


SIGNATURE_FILE = "signature.dsse.json"  # a model directory's copy of its run's signature


def verify_model_dir_signature(model_dir: str | Path, manifest: dict, keys: Sequence[PublicKey]) -> Verified:
    """A model directory's run signature (its ``signature.dsse.json``) against ``keys``, before anything in
    it is unpickled."""
    path = Path(model_dir) / SIGNATURE_FILE
    text = path.read_text() if path.is_file() else None
    try:
        envelope = json.loads(text) if text else None
    except ValueError:
        raise VerificationError(f"{path} is not a signature envelope (not JSON)") from None
    return verify_run_envelope(manifest, envelope, keys)
