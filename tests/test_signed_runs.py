"""Signed runs: signed at commit, and refused by deploy, serve and load when the signature does not hold."""

import json
import subprocess
import sys

import pytest
import yaml

import vci
from vci.config import load_settings
from vci.deploy import deploy, status, undeploy
from vci.errors import NotFoundError, VerificationError
from vci.ledger import Ledger
from vci.modeldir import manifest_digest
from vci.sign.keys import generate_key_pair
from vci.trust import TRUSTED_KEYS_ENV, read_run_signature, run_signature_key


class Doubler:
    def __init__(self, artifacts):
        self.factor = int(open(artifacts["factor"]).read())

    def predict(self, data):
        return [x * self.factor for x in data]


@pytest.fixture()
def keys(tmp_path):
    trusted = generate_key_pair(tmp_path / "keys", "trusted")
    other = generate_key_pair(tmp_path / "keys", "other")
    return {"trusted": trusted, "other": other}


def settings_for(tmp_path, key, trusted_pub, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    for name in ("VCI_SIGNING_KEY", "VCI_SIGNING_KEY_FILE", TRUSTED_KEYS_ENV):
        monkeypatch.delenv(name, raising=False)
    config = {
        "project": "demo",
        "store": "store",
        "signing_key": str(key.relative_to(tmp_path)) if key else None,
        "environments": {"staging": {"verify": {"keys": [str(trusted_pub.relative_to(tmp_path))]}}},
    }
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump({k: v for k, v in config.items() if v is not None}))
    return load_settings(cwd=tmp_path, environ={})


def log_run(settings, tmp_path, factor=3):
    path = tmp_path / f"factor-{factor}.txt"
    path.write_text(str(factor))
    run = vci.init("demo", settings=settings)
    run.log_artifact("factor", path)
    run.log_model(Doubler, artifacts=["factor"])
    run.commit()
    return run


@pytest.fixture()
def cleanup():
    made = []
    yield made.append
    for settings in made:
        try:
            undeploy(settings, "staging")
        except NotFoundError:
            pass


def test_a_signed_run_deploys_and_the_ledger_says_by_which_key(tmp_path, keys, monkeypatch, cleanup):
    private, public = keys["trusted"]
    settings = settings_for(tmp_path, private, public, monkeypatch)
    cleanup(settings)
    run = log_run(settings, tmp_path)
    envelope = read_run_signature(run.store, run.version)
    assert envelope and envelope["payloadType"] == "application/vnd.in-toto+json"
    result = deploy(settings, run.id, "staging")
    assert result.status == "deployed" and run.get_deployed_model("staging").predict([2]) == [6]
    (record,) = Ledger.for_settings(settings).records("staging")
    assert record.extra["verified"]["subject"] == run.version
    assert record.extra["verified"]["signed_by"] == [vci.sign.keys.load_public_key(public).key_id]


def test_an_unsigned_run_is_refused_and_nothing_changes(tmp_path, keys, monkeypatch, cleanup):
    settings = settings_for(tmp_path, keys["trusted"][0], keys["trusted"][1], monkeypatch)
    cleanup(settings)
    good = log_run(settings, tmp_path)
    deploy(settings, good.id, "staging")
    unsigned = settings_for(tmp_path, None, keys["trusted"][1], monkeypatch)
    bad = log_run(unsigned, tmp_path, factor=5)
    with pytest.raises(VerificationError, match="is not signed"):
        deploy(unsigned, bad.id, "staging")
    assert status(settings, "staging").digest == good.version  # the previous good release still runs


def test_a_run_signed_by_a_key_the_policy_does_not_trust_is_refused(tmp_path, keys, monkeypatch, cleanup):
    settings = settings_for(tmp_path, keys["other"][0], keys["trusted"][1], monkeypatch)
    cleanup(settings)
    run = log_run(settings, tmp_path)
    with pytest.raises(VerificationError, match="run .*by a trusted key"):
        deploy(settings, run.id, "staging")
    assert not status(settings, "staging").deployed


def tamper(store_root, run, change):
    path = store_root / "runs" / f"{run.id}.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))
    return manifest


def test_a_manifest_edited_in_the_store_is_refused_by_deploy_and_load(tmp_path, keys, monkeypatch, cleanup):
    settings = settings_for(tmp_path, *keys["trusted"], monkeypatch)
    cleanup(settings)
    run = log_run(settings, tmp_path)
    tamper(tmp_path / "store", run, lambda m: m["environment"]["env"].update(EVIL="1"))
    with pytest.raises(VerificationError, match="is not signed"):
        deploy(settings, run.id, "staging")
    monkeypatch.setenv(TRUSTED_KEYS_ENV, keys["trusted"][1].read_text())
    with pytest.raises(VerificationError):
        vci.get_run(run.id, settings=settings).load_model()


def test_a_blob_swapped_with_its_manifest_entry_is_refused(tmp_path, keys, monkeypatch, cleanup):
    """Someone with write access to the store replaces the model pickle and its digest in the manifest."""
    settings = settings_for(tmp_path, *keys["trusted"], monkeypatch)
    cleanup(settings)
    run = log_run(settings, tmp_path)
    evil = run.store.put_bytes(b"not the model that was reviewed")
    tamper(tmp_path / "store", run, lambda m: m["model"].update(digest=evil.digest, size=evil.size))
    with pytest.raises(VerificationError):
        deploy(settings, run.id, "staging")
    assert not status(settings, "staging").deployed


def test_the_signature_is_named_by_what_it_signs(tmp_path, keys, monkeypatch):
    settings = settings_for(tmp_path, *keys["trusted"], monkeypatch)
    run = log_run(settings, tmp_path)
    assert (tmp_path / "store" / run_signature_key(manifest_digest(run.manifest))).is_file()


def test_the_server_refuses_a_model_dir_whose_signature_does_not_hold(tmp_path, keys, monkeypatch):
    """`vci serve` with trusted keys: a model directory whose manifest was changed is never unpickled."""
    settings = settings_for(tmp_path, *keys["trusted"], monkeypatch)
    run = log_run(settings, tmp_path)
    model_dir = run.model_dir()
    assert (model_dir / "signature.dsse.json").is_file()
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["environment"]["env"]["EVIL"] = "1"
    (model_dir / "manifest.json").write_text(json.dumps(manifest, sort_keys=True, separators=(",", ":")))
    code = (
        "import sys; from vci.serve.service import ModelService; from vci.serve.metrics import Metrics\n"
        f"s = ModelService({str(model_dir)!r}, {str(tmp_path / 'work')!r}, Metrics()); s.load()\n"
        "print(s.state, type(s.load_error).__name__)"
    )
    env = {"PATH": "/usr/bin:/bin", TRUSTED_KEYS_ENV: keys["trusted"][1].read_text(), "PYTHONPATH": sys.path[0]}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.split()[-1] == "VerificationError", out.stderr


def test_a_rollback_verifies_the_release_it_returns_to(tmp_path, keys, monkeypatch, cleanup):
    from vci.release.rollback import rollback

    settings = settings_for(tmp_path, *keys["trusted"], monkeypatch)
    cleanup(settings)
    first = log_run(settings, tmp_path, factor=3)
    deploy(settings, first.id, "staging")
    second = log_run(settings, tmp_path, factor=4)
    deploy(settings, second.id, "staging")
    tamper(tmp_path / "store", first, lambda m: m["environment"]["env"].update(EVIL="1"))
    with pytest.raises(VerificationError, match="is not signed"):
        rollback(settings, "staging")
    assert status(settings, "staging").digest == second.version  # still the release that ran


def test_packaging_verifies_the_run_when_trusted_keys_are_given(tmp_path, keys, monkeypatch):
    from vci.build import Options
    from vci.build.package import package

    settings = settings_for(tmp_path, keys["other"][0], keys["trusted"][1], monkeypatch)
    run = log_run(settings, tmp_path)  # signed, by a key the packager does not trust
    monkeypatch.setenv(TRUSTED_KEYS_ENV, keys["trusted"][1].read_text())
    with pytest.raises(VerificationError, match="by a trusted key"):
        package(settings, run.id, Options(layout=str(tmp_path / "layout")))
    assert not (tmp_path / "layout").exists()  # nothing was built
