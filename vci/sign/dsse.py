"""DSSE v1 envelopes (https://github.com/secure-systems-lab/dsse/blob/master/protocol.md): what an
attestation's signature covers and how it travels.

The signature is over the pre-authentication encoding ``PAE(type, payload)`` =
``"DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload``, never over the JSON of the envelope, so the
payload's bytes are signed exactly as they are carried (base64 in the envelope). ``keyid`` is a hint
only, as the protocol says: ``open_envelope`` tries every trusted key on every signature.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence

from ..errors import VerificationError
from .keys import PublicKey, Signer

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """The bytes a DSSE signature is over."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def sign_envelope(payload_type: str, payload: bytes, signer: Signer) -> dict:
    """``payload`` in an envelope signed by ``signer``."""
    signature = signer.sign(pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": signer.key_id, "sig": base64.b64encode(signature).decode()}],
    }


def open_envelope(envelope: dict | bytes, keys: Sequence[PublicKey]) -> tuple[str, bytes, PublicKey]:
    """``(payloadType, payload, the key that verified)`` of an envelope one of ``keys`` signed;
    VerificationError naming what is wrong otherwise (malformed, or no signature by a trusted key)."""
    payload_type, payload, signatures = _parse(envelope)
    if not keys:
        raise VerificationError("no trusted key to verify the envelope with", hint="give the signer's public key")
    signed = pae(payload_type, payload)
    for signature in signatures:
        for key in keys:
            if key.verify(signed, signature):
                return payload_type, payload, key
    trusted = ", ".join(k.key_id[:19] for k in keys)
    raise VerificationError(
        f"none of the envelope's {len(signatures)} signatures is by a trusted key ({trusted})",
        hint="the attestation was signed by another key, or its payload was changed",
    )


def _parse(envelope: dict | bytes) -> tuple[str, bytes, list[bytes]]:
    if isinstance(envelope, (bytes, bytearray)):
        try:
            envelope = json.loads(envelope)
        except (ValueError, UnicodeDecodeError):
            raise _malformed("it is not JSON") from None
    if not isinstance(envelope, dict):
        raise _malformed(f"it is a JSON {type(envelope).__name__}, not an object")
    payload_type, signatures = envelope.get("payloadType"), envelope.get("signatures")
    if not isinstance(payload_type, str) or not payload_type:
        raise _malformed("payloadType is missing or not a string")
    if not isinstance(signatures, list) or not signatures:
        raise _malformed("it has no signatures")
    if not all(isinstance(s, dict) for s in signatures):
        raise _malformed("a signature is not an object")
    payload = _b64(envelope.get("payload"), "payload")
    return payload_type, payload, [_b64(s.get("sig"), "a signature's sig") for s in signatures]


def _b64(value, what: str) -> bytes:
    """Standard or URL-safe base64, padded or not (the protocol accepts either)."""
    if not isinstance(value, str):
        raise _malformed(f"{what} is missing or not a string")
    try:
        padded = value + "=" * (-len(value) % 4)
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(f"{what} is not base64") from None


def _malformed(problem: str) -> VerificationError:
    return VerificationError(f"not a DSSE envelope: {problem}", hint="expected {payloadType, payload, signatures}")
