"""Signatures and attestations beside an image in its registry, stored as cosign stores them.

Tag-based discovery (cosign's SIGNATURE_SPEC and ATTESTATION_SPEC): the evidence of ``sha256:<hex>``
lives in the image's repository under the tags ``sha256-<hex>.sig`` and ``sha256-<hex>.att``, each an
OCI image manifest whose layers are the evidence:

- ``.sig``: one layer per signature, the simple-signing payload as the blob
  (``application/vnd.dev.cosign.simplesigning.v1+json``) and the base64 signature over its bytes in the
  layer's ``dev.cosignproject.cosign/signature`` annotation;
- ``.att``: one layer per attestation, a DSSE envelope as the blob (``application/vnd.dsse.envelope.v1+json``),
  its ``predicateType`` in an annotation (as cosign writes it).

Each manifest also names the image as its OCI 1.1 ``subject`` (with an ``artifactType``), so that a
registry with the referrers API lists it as a referrer of the image; a registry without one (the
distribution registry 2.8 here) stores the field and ignores it, and the tags are how evidence is found.
Adding evidence reads the tag's manifest first and keeps what is there (another key's signature, an
earlier attestation) unless the caller says a layer is replaced; a layer already there is not added twice.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..digests import hex_of, sha256_bytes
from ..errors import NotFoundError, RegistryError
from ..files import write_replacing
from . import OCI_CONFIG, OCI_MANIFEST, Descriptor, canonical_json
from .registry import RegistryClient
from .transfer import TransferResult, copy_image

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_ANNOTATION = "predicateType"
SUFFIXES = (".sig", ".att")


@dataclass(frozen=True)
class Evidence:
    """One layer of a ``.sig`` or ``.att`` manifest: its blob's bytes (verified against the layer's digest),
    media type and annotations."""

    media_type: str
    data: bytes
    annotations: dict = field(default_factory=dict)

    @property
    def signature(self) -> bytes:
        """The signature of a ``.sig`` layer (empty when the annotation is missing or not base64)."""
        try:
            return base64.b64decode(self.annotations.get(SIGNATURE_ANNOTATION, ""), validate=True)
        except ValueError:
            return b""

    @property
    def digest(self) -> str:
        return sha256_bytes(self.data)


def evidence_tag(digest: str, suffix: str) -> str:
    """``sha256:<hex>`` -> ``sha256-<hex>.sig`` (or ``.att``): where cosign looks for the evidence."""
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}{suffix}"


def signature_layer(payload: bytes, signature: bytes) -> Evidence:
    return Evidence(SIMPLE_SIGNING, payload, {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()})


def attestation_layer(envelope: bytes, predicate_type: str) -> Evidence:
    return Evidence(DSSE_ENVELOPE, envelope, {SIGNATURE_ANNOTATION: "", PREDICATE_ANNOTATION: predicate_type})


def attach(
    client: RegistryClient,
    repo: str,
    subject: Descriptor,
    suffix: str,
    layers: list[Evidence],
    *,
    replaces: Callable[[Evidence], bool] | None = None,
) -> str:
    """Add ``layers`` to the ``suffix`` evidence of ``subject`` in ``repo`` (dropping the layers there that
    ``replaces`` selects); return the evidence manifest's digest. Blobs go first, the manifest (by digest,
    then the tag) last."""
    found = read_evidence(client, repo, subject.digest, suffix)
    kept = [e for e in found if replaces is None or not replaces(e)]
    known = {(e.digest, json.dumps(e.annotations, sort_keys=True)) for e in kept}
    added = [e for e in layers if (e.digest, json.dumps(e.annotations, sort_keys=True)) not in known]
    if not added and len(kept) == len(found):
        return _tagged_digest(client, repo, subject.digest, suffix)
    everything = kept + added
    config = _config_bytes(everything)
    for data in [config] + [e.data for e in added]:
        client.put_blob(repo, sha256_bytes(data), len(data), _opener(data))
    manifest = _manifest_bytes(everything, config, subject, suffix)
    digest = client.put_manifest(repo, manifest, OCI_MANIFEST, sha256_bytes(manifest))
    client.put_manifest(repo, manifest, OCI_MANIFEST, evidence_tag(subject.digest, suffix))
    return digest


def read_evidence(
    client: RegistryClient, repo: str, digest: str, suffix: str, *, cache_dir: Path | None = None
) -> list[Evidence]:
    """The layers of ``digest``'s ``suffix`` evidence in ``repo`` (none when the tag does not exist). With
    ``cache_dir``, blobs read before come from there (named by their digest, checked against it)."""
    try:
        data, _, _ = client.get_manifest(repo, evidence_tag(digest, suffix))
    except NotFoundError:
        return []
    try:
        layers = json.loads(data)["layers"]
        return [
            Evidence(d["mediaType"], _blob(client, repo, d["digest"], cache_dir), dict(d.get("annotations") or {}))
            for d in layers
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise RegistryError(
            f"{client.registry}/{repo}:{evidence_tag(digest, suffix)} is not an evidence manifest ({exc})",
            hint="delete that tag and sign again (`vci package --push` with a signing key)",
        ) from None


def copy_evidence(client: RegistryClient, source: str, digest: str, dst_repo: str, **copy_options) -> TransferResult:
    """Copy ``digest``'s ``.sig`` and ``.att`` manifests (and their blobs) from ``source`` (``registry/repo``)
    to ``dst_repo``: by digest, then tagged as in the source; nothing when the source has none."""
    total = TransferResult(f"{client.registry}/{dst_repo}", digest)
    for suffix in SUFFIXES:
        tag = evidence_tag(digest, suffix)
        try:
            result = copy_image(client, f"{source}:{tag}", dst_repo, tag=tag, **copy_options)
        except NotFoundError:
            continue
        total.bytes_moved += result.bytes_moved
        for outcome in ("uploaded", "mounted", "skipped"):
            getattr(total, outcome).extend(getattr(result, outcome))
    return total


def _tagged_digest(client: RegistryClient, repo: str, digest: str, suffix: str) -> str:
    return client.get_manifest(repo, evidence_tag(digest, suffix))[2]


def _blob(client: RegistryClient, repo: str, digest: str, cache_dir: Path | None) -> bytes:
    """A small evidence blob, verified: from ``cache_dir`` when it holds it, else from the registry."""
    cached = Path(cache_dir) / "evidence" / hex_of(digest) if cache_dir else None
    if cached is not None and cached.is_file() and sha256_bytes(data := cached.read_bytes()) == digest:
        return data
    data = b"".join(client.get_blob(repo, digest))  # get_blob raises IntegrityError unless the bytes match
    if cached is not None:
        write_replacing(cached, data)
    return data


def _opener(data: bytes):
    import io

    return lambda: io.BytesIO(data)


def _config_bytes(layers: list[Evidence]) -> bytes:
    """The image config cosign writes for evidence: no platform, the layers' digests as diff ids."""
    return canonical_json(
        {
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [e.digest for e in layers]},
        }
    )


def _manifest_bytes(layers: list[Evidence], config: bytes, subject: Descriptor, suffix: str) -> bytes:
    artifact = SIMPLE_SIGNING if suffix == ".sig" else DSSE_ENVELOPE
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact,
            "config": Descriptor(OCI_CONFIG, sha256_bytes(config), len(config)).to_json(),
            "layers": [Descriptor(e.media_type, e.digest, len(e.data), e.annotations).to_json() for e in layers],
            "subject": subject.to_json(),
        }
    )
