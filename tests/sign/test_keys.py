"""Signing keys: what KeySigner signs openssl verifies, PublicKey.verify refuses what is not the signature,
key files are private from their first byte, and no error shows a byte of a private key."""

import hashlib
import os
import stat
import subprocess
import threading

import pytest

from vci.errors import ConfigError, UsageError
from vci.sign.keys import (
    ECDSA_P256,
    ED25519,
    KeySigner,
    configured_signer,
    generate_key_pair,
    load_public_key,
    load_public_keys,
    signer_from,
    trusted_key,
)

PAYLOAD = b'{"critical":{"identity":{"docker-reference":"r/x"}},"optional":null}'


def openssl_verifies(tmp_path, public, payload: bytes, signature: bytes, algorithm: str) -> bool:
    """openssl's own verdict: ``dgst -sha256 -verify`` for ECDSA, ``pkeyutl -verify -rawin`` for Ed25519
    (which signs the message itself, not a digest of it)."""
    (tmp_path / "payload").write_bytes(payload)
    (tmp_path / "sig.bin").write_bytes(signature)
    files = {"payload": str(tmp_path / "payload"), "sig": str(tmp_path / "sig.bin")}
    if algorithm == ECDSA_P256:
        argv = ["openssl", "dgst", "-sha256", "-verify", str(public), "-signature", files["sig"], files["payload"]]
    else:
        argv = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(public), "-rawin"]
        argv += ["-in", files["payload"], "-sigfile", files["sig"]]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert ("Verified" in out.stdout) == (out.returncode == 0), out.stdout + out.stderr
    return out.returncode == 0


def test_openssl_verifies_what_the_signer_signed(tmp_path, pair):
    _, public, signer = pair
    signature = signer.sign(PAYLOAD)
    assert openssl_verifies(tmp_path, public, PAYLOAD, signature, signer.public_key.algorithm)
    assert not openssl_verifies(tmp_path, public, PAYLOAD + b" ", signature, signer.public_key.algorithm)


def test_openssl_signed_payload_verifies_with_vci(tmp_path):
    """The other way round: a key and a signature made by openssl alone."""
    key, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], check=True)
    subprocess.run(["openssl", "ec", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True)
    (tmp_path / "payload").write_bytes(PAYLOAD)
    sig = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", key, tmp_path / "payload"], check=True, capture_output=True
    ).stdout
    public = load_public_key(pub)
    assert public.verify(PAYLOAD, sig)
    assert not public.verify(PAYLOAD[:-1], sig)


def test_verify_refuses_a_changed_payload_another_keys_signature_and_a_truncated_one(pair, other_signer):
    _, _, signer = pair
    signature = signer.sign(PAYLOAD)
    key = signer.public_key
    assert key.verify(PAYLOAD, signature)
    assert not key.verify(PAYLOAD.replace(b"r/x", b"r/y"), signature)
    assert not key.verify(PAYLOAD, other_signer.sign(PAYLOAD))
    assert not key.verify(PAYLOAD, signature[:-1])
    assert not key.verify(PAYLOAD, b"")
    assert not key.verify(PAYLOAD, b"\x30\x02\x02\x00")  # a malformed DER sequence: False, not an exception
    assert trusted_key([other_signer.public_key, key], PAYLOAD, signature) == key
    assert trusted_key([other_signer.public_key], PAYLOAD, signature) is None


def test_key_ids_are_the_sha256_of_the_der_public_key(pair):
    _, public, signer = pair
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", public, "-outform", "DER"], check=True, capture_output=True
    ).stdout
    assert signer.key_id == "sha256:" + hashlib.sha256(der).hexdigest() == load_public_key(public).key_id
    assert signer.public_key.algorithm in (ECDSA_P256, ED25519)


def test_the_private_key_is_0600_from_its_first_byte(tmp_path):
    """Every file that appears in the directory while the pair is written is watched: none is ever
    readable by group or others (a chmod after writing would leave such a moment)."""
    old = os.umask(0o022)
    seen: dict[str, int] = {}
    done = threading.Event()

    def watch():
        while not done.is_set():
            for entry in os.scandir(tmp_path):
                if "key" in entry.name:
                    try:
                        seen[entry.name] = seen.get(entry.name, 0) | stat.S_IMODE(entry.stat().st_mode)
                    except FileNotFoundError:
                        pass

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for i in range(20):
            generate_key_pair(tmp_path, f"k{i}")
            generate_key_pair(tmp_path, f"k{i}", overwrite=True)
    finally:
        done.set()
        watcher.join()
        os.umask(old)
    assert any(name.endswith(".tmp") for name in seen), "the watcher saw no temporary file: it tested nothing"
    assert all(mode & 0o077 == 0 for mode in seen.values()), seen
    assert stat.S_IMODE((tmp_path / "k0.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k0.pub").stat().st_mode) == 0o644


def test_a_directory_that_cannot_hold_the_pair_is_named(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match=r"cannot write the key pair in .*file/keys: Not a directory"):
        generate_key_pair(tmp_path / "file" / "keys")


def test_an_existing_pair_is_not_replaced_unless_asked(tmp_path):
    private, public = generate_key_pair(tmp_path)
    before = private.read_bytes(), public.read_bytes()
    with pytest.raises(UsageError, match="exist already.*--force"):
        generate_key_pair(tmp_path)
    (tmp_path / "vci.key").unlink()
    with pytest.raises(UsageError, match=r"vci.pub exists already"):  # either file is enough to refuse
        generate_key_pair(tmp_path)
    assert public.read_bytes() == before[1] and not private.exists()
    generate_key_pair(tmp_path, overwrite=True)
    assert public.read_bytes() != before[1]


@pytest.mark.parametrize("algorithm", [ECDSA_P256, ED25519])
def test_an_encrypted_key_needs_its_password_from_the_environment(tmp_path, algorithm):
    private, _ = generate_key_pair(tmp_path, algorithm=algorithm, password=b"correct horse battery")
    assert b"ENCRYPTED PRIVATE KEY" in private.read_bytes()
    with pytest.raises(ConfigError, match="is encrypted and no password was given.*VCI_SIGNING_KEY_PASSWORD"):
        signer_from(str(private), {})
    with pytest.raises(ConfigError, match="cannot be decrypted with the password in VCI_SIGNING_KEY_PASSWORD"):
        signer_from(str(private), {"VCI_SIGNING_KEY_PASSWORD": "wrong horse"})
    signer = signer_from(f"file:{private}", {"VCI_SIGNING_KEY_PASSWORD": "correct horse battery"})
    assert signer.public_key.verify(b"x", signer.sign(b"x"))


def test_a_password_for_a_key_without_one_is_refused(pair):
    private, _, _ = pair
    with pytest.raises(ConfigError, match="is not encrypted, but VCI_SIGNING_KEY_PASSWORD is set"):
        signer_from(str(private), {"VCI_SIGNING_KEY_PASSWORD": "something"})


def test_the_environment_wins_then_the_key_file_variable_then_the_setting(tmp_path):
    keys = {n: generate_key_pair(tmp_path, n)[0] for n in ("env", "file", "setting")}
    ids = {n: signer_from(str(p), {}).key_id for n, p in keys.items()}
    pem = keys["env"].read_text()
    everything = {"VCI_SIGNING_KEY": pem, "VCI_SIGNING_KEY_FILE": str(keys["file"])}
    setting = f"file:{keys['setting']}"
    assert configured_signer(setting, everything).key_id == ids["env"]
    assert configured_signer(setting, {"VCI_SIGNING_KEY_FILE": str(keys["file"])}).key_id == ids["file"]
    assert configured_signer(setting, {}).key_id == ids["setting"]
    assert configured_signer(str(keys["setting"]), {}).key_id == ids["setting"]  # a plain path
    assert configured_signer("env:RELEASE_KEY", {"RELEASE_KEY": pem}).key_id == ids["env"]
    assert configured_signer(None, {}) is None
    assert configured_signer(None, {"VCI_SIGNING_KEY": ""}) is None


def secret_lines(pem: bytes) -> list[str]:
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


def assert_no_key_material(message: str, pem: bytes) -> None:
    for line in secret_lines(pem):
        assert line not in message
        assert line[:16] not in message


def test_no_error_shows_key_material(tmp_path, pair):
    private, _, signer = pair
    pem = private.read_bytes()
    broken = pem.replace(secret_lines(pem)[0].encode(), b"A" * 10, 1)
    cases = [
        lambda: signer_from("env:K", {"K": broken.decode()}),
        lambda: signer_from("env:K", {"K": pem.decode()[30:]}),  # the PEM without its first line
        lambda: signer_from("env:K", {"K": pem.decode(), "VCI_SIGNING_KEY_PASSWORD": "p4ssword-1"}),
        lambda: load_public_key(private),  # a private key where a public one belongs
        lambda: load_public_key(pem),
        lambda: KeySigner(pem[: len(pem) // 2]),
    ]
    for case in cases:
        with pytest.raises(ConfigError) as err:
            case()
        assert_no_key_material(str(err.value), pem)
        shown_context = err.value.__context__ is not None and not err.value.__suppress_context__
        assert err.value.__cause__ is None and not shown_context  # no library exception chained (--debug prints it)
    assert_no_key_material(repr(signer), pem)
    assert signer.key_id in repr(signer)


def test_a_path_in_the_pem_variable_is_explained(tmp_path, pair):
    private, _, _ = pair
    with pytest.raises(ConfigError, match="VCI_SIGNING_KEY does not hold a PEM private key.*VCI_SIGNING_KEY_FILE"):
        configured_signer(None, {"VCI_SIGNING_KEY": str(private)})
    with pytest.raises(ConfigError, match=r"cannot read the signing key file VCI_SIGNING_KEY_FILE names \(.*"):
        configured_signer(None, {"VCI_SIGNING_KEY_FILE": str(tmp_path / "missing.key")})  # its path is masked
    with pytest.raises(ConfigError, match=r"cannot read the signing key .*missing\.key: No such file"):
        configured_signer(f"file:{tmp_path / 'missing.key'}", {})
    with pytest.raises(ConfigError, match="RELEASE_KEY is not set"):
        signer_from("env:RELEASE_KEY", {})


def test_unsupported_keys_are_refused_by_name(tmp_path):
    rsa, p384 = tmp_path / "rsa.pem", tmp_path / "p384.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-out", rsa], check=True, capture_output=True)
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", p384],
        check=True,
        capture_output=True,
    )
    with pytest.raises(ConfigError, match="rsa.pem is RSA; vci signs with ECDSA P-256 or Ed25519 keys"):
        signer_from(str(rsa), {})
    with pytest.raises(ConfigError, match="p384.pem is ECDSA secp384r1;"):
        signer_from(str(p384), {})


def test_public_keys_load_from_paths_and_pem_once_each(pair, other_signer):
    _, public, signer = pair
    keys = load_public_keys([public, f"file:{public}", public.read_bytes(), other_signer.public_key.pem.decode()])
    assert [k.key_id for k in keys] == [signer.key_id, other_signer.key_id]
    with pytest.raises(ConfigError, match="cannot read the public key"):
        load_public_key(public.parent / "absent.pub")
