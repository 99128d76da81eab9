"""Signatures and attestations stored beside an image by cosign's tag convention, in a real registry."""

import base64
import json
import subprocess

import pytest

from registry import blob_mounts, blob_uploads
from vci.errors import IntegrityError
from vci.oci import OCI_MANIFEST, Descriptor
from vci.oci.evidence import (
    DSSE_ENVELOPE,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING,
    attach,
    attestation_layer,
    copy_evidence,
    evidence_tag,
    read_evidence,
    signature_layer,
)
from vci.oci.registry import RegistryClient
from vci.oci.transfer import push_image

from .conftest import make_app, random_bytes


def subject_of(image) -> Descriptor:
    return Descriptor(OCI_MANIFEST, image.digest, len(image.manifest_bytes))


def skopeo_raw(ref: str) -> dict:
    done = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_tag_is_cosigns():
    assert evidence_tag("sha256:" + "ab" * 32, ".sig") == "sha256-" + "ab" * 32 + ".sig"


def test_a_signature_is_stored_where_cosign_looks_for_it(registry, repo, tmp_path):
    image = make_app(tmp_path)
    client = RegistryClient(registry.host)
    push_image(client, image, repo)
    attach(client, repo, subject_of(image), ".sig", [signature_layer(b'{"payload":1}', b"\x30\x01sig")])
    manifest = skopeo_raw(f"{registry.host}/{repo}:{evidence_tag(image.digest, '.sig')}")
    (layer,) = manifest["layers"]
    assert manifest["mediaType"] == OCI_MANIFEST and layer["mediaType"] == SIMPLE_SIGNING
    assert base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION]) == b"\x30\x01sig"
    assert manifest["subject"]["digest"] == image.digest  # an OCI 1.1 referrer where the registry has the API
    (back,) = read_evidence(client, repo, image.digest, ".sig")
    assert back.data == b'{"payload":1}' and back.signature == b"\x30\x01sig"


def test_evidence_accumulates_and_is_not_duplicated(registry, repo, tmp_path):
    image = make_app(tmp_path)
    client = RegistryClient(registry.host)
    push_image(client, image, repo)
    first = signature_layer(b"payload", b"sig-one")
    attach(client, repo, subject_of(image), ".sig", [first])
    attach(client, repo, subject_of(image), ".sig", [first, signature_layer(b"payload", b"sig-two")])
    digest = attach(client, repo, subject_of(image), ".sig", [first])
    assert [e.signature for e in read_evidence(client, repo, image.digest, ".sig")] == [b"sig-one", b"sig-two"]
    assert digest == client.get_manifest(repo, evidence_tag(image.digest, ".sig"))[2]


def test_attestations_carry_their_predicate_type(registry, repo, tmp_path):
    image = make_app(tmp_path)
    client = RegistryClient(registry.host)
    push_image(client, image, repo)
    envelope = json.dumps({"payloadType": "application/vnd.in-toto+json", "payload": "", "signatures": []}).encode()
    attach(client, repo, subject_of(image), ".att", [attestation_layer(envelope, "https://slsa.dev/provenance/v1")])
    (layer,) = skopeo_raw(f"{registry.host}/{repo}:{evidence_tag(image.digest, '.att')}")["layers"]
    assert (
        layer["mediaType"] == DSSE_ENVELOPE
        and layer["annotations"]["predicateType"] == "https://slsa.dev/provenance/v1"
    )
    assert read_evidence(client, repo, image.digest, ".att")[0].data == envelope


def test_no_evidence_reads_as_none(registry, repo, tmp_path):
    image = make_app(tmp_path)
    client = RegistryClient(registry.host)
    push_image(client, image, repo)
    assert read_evidence(client, repo, image.digest, ".sig") == []


def test_a_swapped_evidence_blob_is_detected(registry, repo, tmp_path):
    """The registry serving other bytes under a layer's digest is caught by the blob's digest check."""
    image = make_app(tmp_path)
    client = RegistryClient(registry.host)
    push_image(client, image, repo)
    attach(client, repo, subject_of(image), ".sig", [signature_layer(b"original payload", b"sig")])
    registry.corrupt_blob(signature_layer(b"original payload", b"sig").digest, b"another payload!")
    with pytest.raises(IntegrityError):
        read_evidence(client, repo, image.digest, ".sig")


def test_evidence_is_copied_with_the_image_by_mounts(registry, repo, tmp_path):
    image = make_app(tmp_path, weights=random_bytes(500_000, seed=9))
    client = RegistryClient(registry.host)
    push_image(client, image, f"{repo}-staging")
    subject = subject_of(image)
    attach(client, f"{repo}-staging", subject, ".sig", [signature_layer(b"p", b"s")])
    attach(client, f"{repo}-staging", subject, ".att", [attestation_layer(b"{}", "https://slsa.dev/provenance/v1")])
    mark = registry.mark()
    result = copy_evidence(client, f"{registry.host}/{repo}-staging", image.digest, f"{repo}-prod")
    logged = registry.requests_since(mark)
    assert blob_uploads(logged) == [] and blob_mounts(logged) and result.bytes_moved < 4096
    assert read_evidence(client, f"{repo}-prod", image.digest, ".sig")[0].signature == b"s"
    assert read_evidence(client, f"{repo}-prod", image.digest, ".att")[0].data == b"{}"
    unsigned = "sha256:" + "0" * 64
    assert copy_evidence(client, f"{registry.host}/{repo}-staging", unsigned, f"{repo}-prod").bytes_moved == 0
