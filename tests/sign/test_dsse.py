"""DSSE envelopes checked against securesystemslib's independent implementation, both ways, and tampering."""

import base64
import json

import pytest
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey

from vci.errors import VerificationError
from vci.sign.dsse import INTOTO_PAYLOAD_TYPE, open_envelope, pae, sign_envelope
from vci.sign.keys import ECDSA_P256

PAYLOAD = b'{"_type":"https://in-toto.io/Statement/v1","subject":[]}'


def sslib_key(signer):
    """The signer's public key as securesystemslib holds it, under vci's key id."""
    from cryptography.hazmat.primitives import serialization

    crypto = serialization.load_pem_public_key(signer.public_key.pem)
    scheme = "ecdsa-sha2-nistp256" if signer.public_key.algorithm == ECDSA_P256 else "ed25519"
    return SSlibKey.from_crypto(crypto, keyid=signer.key_id, scheme=scheme)


def test_pae_is_the_protocols_example():
    """The protocol's own test vector (protocol.md, "Test cases")."""
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae(INTOTO_PAYLOAD_TYPE, b"") == b"DSSEv1 28 application/vnd.in-toto+json 0 "


def test_securesystemslib_verifies_what_vci_signed(pair):
    _, _, signer = pair
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, PAYLOAD, signer)
    parsed = Envelope.from_dict(json.loads(json.dumps(envelope)))
    assert parsed.payload == PAYLOAD and parsed.payload_type == INTOTO_PAYLOAD_TYPE
    assert list(parsed.verify([sslib_key(signer)], 1)) == [signer.key_id]
    changed = Envelope.from_dict({**json.loads(json.dumps(envelope)), "payload": base64.b64encode(b"{}").decode()})
    with pytest.raises(Exception, match="threshold"):
        changed.verify([sslib_key(signer)], 1)


def test_vci_opens_what_securesystemslib_signed(pair):
    private, _, signer = pair
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    theirs = Envelope(PAYLOAD, INTOTO_PAYLOAD_TYPE, {})
    theirs.sign(CryptoSigner(key, sslib_key(signer)))
    kind, payload, by = open_envelope(json.dumps(theirs.to_dict()).encode(), [signer.public_key])
    assert (kind, payload, by) == (INTOTO_PAYLOAD_TYPE, PAYLOAD, signer.public_key)


def test_the_key_id_is_a_hint_and_every_trusted_key_is_tried(pair, other_signer):
    _, _, signer = pair
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, PAYLOAD, signer)
    envelope["signatures"][0]["keyid"] = "someone-else"
    envelope["signatures"].insert(0, sign_envelope(INTOTO_PAYLOAD_TYPE, PAYLOAD, other_signer)["signatures"][0])
    assert open_envelope(envelope, [signer.public_key])[2] == signer.public_key


def tampered(envelope: dict, **changes) -> dict:
    return {**json.loads(json.dumps(envelope)), **changes}


def test_tampered_envelopes_are_refused_with_the_reason(pair, other_signer):
    _, _, signer = pair
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, PAYLOAD, signer)
    other_sig = sign_envelope(INTOTO_PAYLOAD_TYPE, PAYLOAD, other_signer)["signatures"]
    cases = {
        "a changed payload": tampered(envelope, payload=base64.b64encode(PAYLOAD + b" ").decode()),
        "a changed payload type": tampered(envelope, payloadType="application/json"),
        "another key's signature": tampered(envelope, signatures=other_sig),
    }
    for what, bad in cases.items():
        with pytest.raises(VerificationError, match="none of the envelope's 1 signatures is by a trusted key") as err:
            open_envelope(bad, [signer.public_key])
        assert err.value.exit_code == 16, what
    with pytest.raises(VerificationError, match="no trusted key"):
        open_envelope(envelope, [])


@pytest.mark.parametrize(
    "envelope, problem",
    [
        (b"not json", "it is not JSON"),
        (b"[]", "it is a JSON list"),
        ({"payload": "e30=", "signatures": [{"sig": "AA=="}]}, "payloadType is missing"),
        ({"payloadType": "t", "payload": "e30=", "signatures": []}, "it has no signatures"),
        ({"payloadType": "t", "payload": "%%%", "signatures": [{"sig": "AA=="}]}, "payload is not base64"),
        ({"payloadType": "t", "payload": "e30=", "signatures": [{"keyid": "k"}]}, "a signature.s sig is missing"),
        ({"payloadType": "t", "payload": "e30=", "signatures": ["AA=="]}, "a signature is not an object"),
    ],
)
def test_malformed_envelopes_say_what_is_wrong(envelope, problem, other_signer):
    with pytest.raises(VerificationError, match=f"not a DSSE envelope: {problem}"):
        open_envelope(envelope, [other_signer.public_key])


def test_url_safe_unpadded_base64_is_read_as_the_protocol_allows(pair):
    _, _, signer = pair
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, b"\xfb\xff\xfe", signer)
    sig = envelope["signatures"][0]["sig"]
    envelope["payload"] = base64.urlsafe_b64encode(b"\xfb\xff\xfe").decode().rstrip("=")
    envelope["signatures"][0]["sig"] = sig.replace("+", "-").replace("/", "_").rstrip("=")
    assert open_envelope(envelope, [signer.public_key])[1] == b"\xfb\xff\xfe"
