"""`vci package` with a signing key, against a real registry: what it attaches, checked independently,
and every tampering the policy must refuse."""

import base64
import json
import subprocess
import zlib

import pytest

from vci.build import Options
from vci.build.package import package
from vci.errors import VerificationError
from vci.oci.evidence import evidence_tag, read_evidence
from vci.oci.registry import RegistryClient
from vci.sign.keys import generate_key_pair, load_public_key
from vci.sign.statement import CYCLONEDX_BOM, SLSA_PROVENANCE
from vci.trust import Policy
from vci.verification import check_image, evidence_report

from .conftest import log_scaler

GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_RUN_ID": "7",
    "GITHUB_REPOSITORY": "ml-team/models",
    "GITHUB_WORKFLOW": "release",
    "GITHUB_SHA": "c0ffee",
}


@pytest.fixture()
def keys(tmp_path, monkeypatch):
    private, public = generate_key_pair(tmp_path / "keys", "ci")
    other = generate_key_pair(tmp_path / "keys", "other")
    monkeypatch.setenv("VCI_SIGNING_KEY_FILE", str(private))
    for name, value in GITHUB.items():
        monkeypatch.setenv(name, value)
    return {"private": private, "public": public, "other_public": other[1]}


def policy(keys, *require, key="public", **provenance) -> Policy:
    return Policy((load_public_key(keys[key]),), frozenset(require), **provenance)


@pytest.fixture()
def signed(settings, tmp_path, scratch_base, registry, keys, request):
    unique = zlib.crc32(request.node.name.encode())  # each test its own run content and repository
    run = log_scaler(settings, tmp_path, str(2000 + unique % 100000))
    repo = f"ml/signed-{unique:x}"
    result = package(settings, run.id, Options(base=scratch_base, push=[f"{registry.host}/{repo}"]))
    return run, result, RegistryClient(registry.host), repo


def test_the_signature_verifies_with_openssl_over_the_exact_payload(signed, keys, tmp_path):
    run, result, client, repo = signed
    assert result["signed"]["key_id"] == load_public_key(keys["public"]).key_id
    (layer,) = read_evidence(client, repo, result["digest"], ".sig")
    payload = json.loads(layer.data)
    assert payload["critical"]["image"]["docker-manifest-digest"] == result["digest"]
    assert payload["critical"]["type"] == "cosign container image signature"
    (tmp_path / "payload").write_bytes(layer.data)
    (tmp_path / "sig").write_bytes(layer.signature)
    done = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(keys["public"]), "-signature", str(tmp_path / "sig")]
        + [str(tmp_path / "payload")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0 and "Verified OK" in done.stdout, done.stderr


def test_the_attestations_say_what_was_built_from_what(signed, keys):
    run, result, client, repo = signed
    found = evidence_report(client, repo, result["digest"], [load_public_key(keys["public"])])
    kinds = {a["predicate_type"]: a for a in found["attestations"]}
    assert set(kinds) == {SLSA_PROVENANCE, CYCLONEDX_BOM} and all(a["valid"] for a in kinds.values())
    provenance = kinds[SLSA_PROVENANCE]["predicate"]
    external = provenance["buildDefinition"]["externalParameters"]
    assert external["run"] == run.id and external["modelDigest"] == run.version
    assert provenance["buildDefinition"]["internalParameters"]["ci"]["repository"] == "ml-team/models"
    sbom = kinds[CYCLONEDX_BOM]["predicate"]
    assert sbom["specVersion"] == "1.6" and any(c["name"] == "vci" for c in sbom["components"])


def test_a_policy_asking_for_everything_passes_and_names_the_evidence(signed, keys):
    _, result, client, repo = signed
    want = policy(keys, "signature", "sbom", "provenance", repository="ml-team/models")
    verified = check_image(want, client, repo, result["digest"])
    assert verified.signed_by == [load_public_key(keys["public"]).key_id]
    assert {a["predicate_type"] for a in verified.attestations} == {SLSA_PROVENANCE, CYCLONEDX_BOM}


def test_a_key_not_in_the_policy_is_refused(signed, keys):
    _, result, client, repo = signed
    with pytest.raises(VerificationError, match="not signed by a trusted key"):
        check_image(policy(keys, "signature", key="other_public"), client, repo, result["digest"])


def test_provenance_from_another_repository_is_refused(signed, keys):
    _, result, client, repo = signed
    with pytest.raises(VerificationError, match="names the repository 'ml-team/models', not 'someone/else'"):
        check_image(policy(keys, "provenance", repository="someone/else"), client, repo, result["digest"])


def test_evidence_of_another_image_moved_onto_this_one_is_refused(settings, tmp_path, scratch_base, registry, keys):
    """A signature and attestations copied from image A's tags onto unsigned image B name A's digest."""
    client, repo = RegistryClient(registry.host), "ml/swapped"
    options = Options(base=scratch_base, push=[f"{registry.host}/{repo}"])
    a = package(settings, log_scaler(settings, tmp_path, "1011").id, options)
    b = package(settings, log_scaler(settings, tmp_path, "1012").id, options)
    for suffix in (".sig", ".att"):  # B's evidence tags now hold A's evidence manifests
        data, media_type, _ = client.get_manifest(repo, evidence_tag(a["digest"], suffix))
        client.put_manifest(repo, data, media_type, evidence_tag(b["digest"], suffix))
    with pytest.raises(VerificationError, match=f"signs {a['digest']}, not {b['digest']}"):
        check_image(policy(keys, "signature"), client, repo, b["digest"])
    with pytest.raises(VerificationError, match=f"attests {a['digest']}, not {b['digest']}"):
        check_image(policy(keys, "provenance"), client, repo, b["digest"])


def test_a_changed_signature_is_refused(signed, keys):
    _, result, client, repo = signed
    (layer,) = read_evidence(client, repo, result["digest"], ".sig")
    forged = bytearray(layer.signature)
    forged[-1] ^= 1
    data, media_type, _ = client.get_manifest(repo, evidence_tag(result["digest"], ".sig"))
    manifest = json.loads(data)
    manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] = base64.b64encode(forged).decode()
    client.put_manifest(repo, json.dumps(manifest).encode(), media_type, evidence_tag(result["digest"], ".sig"))
    with pytest.raises(VerificationError, match="no valid signature: not signed by a trusted key"):
        check_image(policy(keys, "signature"), client, repo, result["digest"])


def test_no_key_no_signature(settings, tmp_path, scratch_base, registry, monkeypatch):
    monkeypatch.delenv("VCI_SIGNING_KEY_FILE", raising=False)
    monkeypatch.delenv("VCI_SIGNING_KEY", raising=False)
    run = log_scaler(settings, tmp_path, "1013")
    result = package(settings, run.id, Options(base=scratch_base, push=[f"{registry.host}/ml/unsigned"]))
    assert result["signed"] is None
    assert read_evidence(RegistryClient(registry.host), "ml/unsigned", result["digest"], ".sig") == []


def test_vci_verify_prints_the_evidence_and_exits_16_when_it_does_not_hold(signed, keys, tmp_path):
    from .conftest import env_without_debug

    run, result, _, _ = signed
    image = result["signed"]["images"][0]["image"]

    def verify(*args):
        return subprocess.run(
            ["vci", "verify", *args, "--output", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={**env_without_debug(), "VCI_STORE": str(tmp_path / "store")},
        )

    good = verify(image, "--key", str(keys["public"]))
    assert good.returncode == 0, good.stderr
    report = json.loads(good.stdout)
    assert report["verified"] and report["signatures"][0]["key_id"] == load_public_key(keys["public"]).key_id
    assert {a["predicate_type"] for a in report["attestations"]} == {SLSA_PROVENANCE, CYCLONEDX_BOM}
    bad = verify(image, "--key", str(keys["other_public"]))
    assert bad.returncode == 16 and not json.loads(bad.stdout)["verified"]
    assert "Traceback" not in bad.stderr and "no valid signature" in bad.stderr
    signed_run = verify(run.id, "--key", str(keys["public"]))  # logged with the key configured: signed at commit
    assert signed_run.returncode == 0 and json.loads(signed_run.stdout)["kind"] == "run"
    other = verify(run.id, "--key", str(keys["other_public"]))
    assert other.returncode == 16 and "trusted key" in json.loads(other.stdout)["signatures"][0]["problem"]


def test_packaging_again_keeps_one_signature_and_one_attestation_of_each_kind(signed, settings, scratch_base):
    run, result, client, repo = signed
    again = package(settings, run.id, Options(base=scratch_base, push=[f"{client.registry}/{repo}"]))
    assert again["digest"] == result["digest"]
    assert len(read_evidence(client, repo, result["digest"], ".sig")) == 1
    kinds = [e.annotations["predicateType"] for e in read_evidence(client, repo, result["digest"], ".att")]
    assert sorted(kinds) == sorted([SLSA_PROVENANCE, CYCLONEDX_BOM])


def test_a_changed_image_manifest_is_another_digest_and_unsigned(signed, keys):
    """Someone pushes the signed image's manifest with one annotation added: the bytes the policy would
    deploy are not the ones that were signed."""
    _, result, client, repo = signed
    data, media_type, _ = client.get_manifest(repo, result["digest"])
    changed = json.loads(data)
    changed.setdefault("annotations", {})["org.example/changed"] = "yes"
    digest = client.put_manifest(repo, json.dumps(changed).encode(), media_type, "changed")
    assert digest != result["digest"]
    with pytest.raises(VerificationError, match="is not signed"):
        check_image(policy(keys, "signature"), client, repo, digest)
