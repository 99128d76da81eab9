"""``vci keys generate`` and ``vci keys show`` through the real command line (a subprocess each)."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def vci(*args, cwd, env=None):
    full_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("VCI_DEBUG", "VCI_SIGNING_KEY_PASSWORD", "GITHUB_ACTIONS", "GITLAB_CI"):
        full_env.pop(name, None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "vci", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )


def key_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.startswith("-----")]


def test_generate_prints_paths_and_key_id_never_the_key(tmp_path):
    out = vci("keys", "generate", "--dir", "keys", "--output", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    private, public = tmp_path / "keys" / "vci.key", tmp_path / "keys" / "vci.pub"
    assert result["private_key"] == "keys/vci.key" and result["public_key"] == "keys/vci.pub"
    assert result["algorithm"] == "ecdsa-p256" and result["encrypted"] is False
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    for line in key_lines(private):
        assert line not in out.stdout + out.stderr
    shown = vci("keys", "show", str(public), "-o", "json", cwd=tmp_path)
    assert json.loads(shown.stdout) == {
        "public_key": str(public),
        "key_id": result["key_id"],
        "algorithm": "ecdsa-p256",
    }


def test_generate_refuses_to_replace_a_pair_unless_forced(tmp_path):
    assert vci("keys", "generate", "--name", "release", "--algorithm", "ed25519", cwd=tmp_path).returncode == 0
    first = (tmp_path / "release.pub").read_bytes()
    again = vci("keys", "generate", "--name", "release", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        "vci: error: release.key and release.pub exist already (pass --force to replace the key pair)"
    )
    assert (tmp_path / "release.pub").read_bytes() == first
    forced = vci("keys", "generate", "--name", "release", "--force", cwd=tmp_path)
    assert forced.returncode == 0 and "key_id: sha256:" in forced.stdout
    assert (tmp_path / "release.pub").read_bytes() != first


def test_the_password_comes_from_the_environment(tmp_path):
    out = vci("keys", "generate", "-o", "json", cwd=tmp_path, env={"VCI_SIGNING_KEY_PASSWORD": "s3cret-passw0rd"})
    assert json.loads(out.stdout)["encrypted"] is True
    assert "ENCRYPTED PRIVATE KEY" in (tmp_path / "vci.key").read_text()
    assert "s3cret-passw0rd" not in out.stdout + out.stderr


def test_show_refuses_a_private_key_without_showing_it(tmp_path):
    vci("keys", "generate", cwd=tmp_path)
    out = vci("keys", "show", "vci.key", cwd=tmp_path)
    assert out.returncode == 3 and out.stdout == ""
    assert out.stderr.startswith("vci: error: the public key vci.key is not a PEM public key (give NAME.pub")
    assert "Traceback" not in out.stderr
    for line in key_lines(tmp_path / "vci.key"):
        assert line not in out.stderr


def test_the_signing_modules_import_no_crypto_or_sbom_library():
    code = (
        "import sys\nimport vci.sign.keys, vci.sign.dsse, vci.sign.statement, vci.sign.simplesigning\n"
        "import vci.sign.sbom, vci.cli.keys\n"
        "print([m for m in ('cryptography', 'cyclonedx', 'packageurl') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_sign_refuses_without_a_key_or_a_digest_in_one_line(tmp_path):
    no_key = vci("sign", "localhost:5000/ml/app@sha256:" + "a" * 64, cwd=tmp_path, env={"VCI_SIGNING_KEY": ""})
    assert no_key.returncode == 2 and "no signing key is configured" in no_key.stderr
    assert "Traceback" not in no_key.stderr and len(no_key.stderr.strip().splitlines()) <= 2
    generated = vci("keys", "generate", "--dir", "keys", cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    key = next((tmp_path / "keys").glob("*.key"))
    by_tag = vci("sign", "localhost:5000/ml/app:v1", cwd=tmp_path, env={"VCI_SIGNING_KEY_FILE": str(key)})
    assert by_tag.returncode == 2 and "names no digest" in by_tag.stderr and "Traceback" not in by_tag.stderr
