"""The payload cosign signs for an image: a "simple signing" JSON naming the reference and manifest digest.

Its shape is cosign's exactly (``critical.identity.docker-reference``, ``critical.image.
docker-manifest-digest``, ``critical.type`` ``cosign container image signature``, ``optional``), so a
signature vci stores under ``sha256-<hex>.sig`` is one cosign can verify, and the other way round.
vci writes the payload as canonical JSON (cosign writes the same keys in its own order: a verifier
checks the signature over the bytes as stored, never over a re-encoding).
"""

from __future__ import annotations

import json

from ..digests import check_digest
from ..errors import UsageError, VerificationError
from . import canonical_json

SIGNATURE_TYPE = "cosign container image signature"
MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"


def simple_signing_payload(docker_reference: str, manifest_digest: str, annotations: dict | None = None) -> bytes:
    """What a signature of the image ``manifest_digest`` (pushed as ``docker_reference``) is over."""
    check_digest(manifest_digest)
    if annotations is not None and not all(isinstance(k, str) for k in annotations):
        raise UsageError("signature annotations must have string keys")
    doc = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": annotations or None,
    }
    return canonical_json(doc)


def read_simple_signing(payload: bytes) -> tuple[str, str]:
    """``(docker-reference, manifest digest)`` of a payload; VerificationError if it is not cosign's shape."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise _malformed("it is not JSON") from None
    critical = doc.get("critical") if isinstance(doc, dict) else None
    if not isinstance(critical, dict):
        raise _malformed("it has no critical section")
    if critical.get("type") != SIGNATURE_TYPE:
        raise _malformed(f"its type is {critical.get('type')!r}")
    identity, image = critical.get("identity"), critical.get("image")
    reference = identity.get("docker-reference") if isinstance(identity, dict) else None
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(reference, str) or not isinstance(digest, str):
        raise _malformed("critical.identity.docker-reference or critical.image.docker-manifest-digest is missing")
    try:
        check_digest(digest)
    except UsageError:
        raise _malformed(f"docker-manifest-digest {digest!r} is not a sha256 digest") from None
    return reference, digest


def _malformed(problem: str) -> VerificationError:
    return VerificationError(f"not a cosign simple-signing payload: {problem}", hint=f"expected {MEDIA_TYPE}")
