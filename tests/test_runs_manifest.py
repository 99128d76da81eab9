"""Malformed run manifests in a store: checked on read, reported by run id, skipped (with a warning) by listing."""

import json
import os
import subprocess
import sys

import pytest

import vci
from vci.errors import IntegrityError
from vci.modeldir import manifest_problem


class Constant:
    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return 1


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "store"


def good_run(store):
    run = vci.init("demo", store=str(store))
    run.log_model(Constant)
    run.commit()
    return run


def break_manifest(store, run_id, change):
    """Rewrite the stored manifest of ``run_id`` with ``change(doc)`` (as a bad writer or an edit would)."""
    path = store / "runs" / f"{run_id}.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(change(doc)))


def without(field):
    return lambda doc: {k: v for k, v in doc.items() if k != field}


def replaced(field, value):
    return lambda doc: {**doc, field: value}


BAD = {
    "a JSON list": (lambda doc: [doc], "a JSON list, not an object"),
    "no created": (without("created"), "'created' is missing"),
    "no environment": (without("environment"), "'environment' is missing"),
    "created a number": (replaced("created", 20261124), "'created' is int, not str"),
    "created not a time": (replaced("created", "yesterday"), "not a UTC time"),
    "environment a string": (replaced("environment", "3.11"), "'environment' is str, not dict"),
    "env value a number": (replaced("environment", {"python": "3.11.7", "env": {"N": 1}}), "environment.env"),
    "requirements a string": (replaced("requirements", "numpy"), "'requirements' is str, not list"),
    "artifacts a list": (replaced("artifacts", []), "'artifacts' is list, not dict"),
    "size a string": (
        replaced("artifacts", {"w": {"digest": "sha256:" + "0" * 64, "size": "9", "kind": "file", "filename": "w"}}),
        "'artifacts.w.size' is str, not int",
    ),
    "bad digest": (
        lambda doc: {**doc, "model": {**doc["model"], "digest": "md5:abc"}},
        "'model.digest' is 'md5:abc'",
    ),
    "model needs a missing artifact": (
        lambda doc: {**doc, "model": {**doc["model"], "artifacts": ["weights"]}},
        "names artifacts the run lacks: weights",
    ),
    "another run's id": (replaced("id", "20200101-000000-0000"), "names the run '20200101-000000-0000'"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_manifest_is_refused_naming_the_run(store, name):
    change, fragment = BAD[name]
    run = good_run(store)
    break_manifest(store, run.id, change)
    with pytest.raises(IntegrityError, match=f"run {run.id} in .* has a malformed manifest: .*{fragment}"):
        vci.get_run(run.id, store=str(store))


def test_not_json_is_refused_naming_the_run(store):
    run = good_run(store)
    (store / "runs" / f"{run.id}.json").write_text("{not json")
    with pytest.raises(IntegrityError, match=f"run {run.id} .* malformed manifest: .*not valid JSON"):
        vci.get_run(run.id, store=str(store))


def test_listing_goes_on_past_a_bad_manifest_with_a_warning(store, caplog):
    good, bad = good_run(store), good_run(store)
    break_manifest(store, bad.id, without("environment"))
    (store / "runs" / "notes.json").write_text("{}")  # not a run's key at all
    with caplog.at_level("WARNING", logger="vci"):
        assert [r.id for r in vci.list_runs(store=str(store))] == [good.id]
    warnings = [r.getMessage() for r in caplog.records]
    assert any(f"runs/{bad.id}.json" in w and "'environment' is missing" in w for w in warnings), warnings
    assert any("runs/notes.json" in w for w in warnings), warnings


def test_every_manifest_vci_writes_passes(store, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("x")
    run = vci.init(None, store=str(store))  # no project
    run.log_artifact("dir", tmp_path / "d")
    run.log_artifact("obj", {"a": 1})
    run.log_model(Constant, artifacts=["dir"])
    run.log_environment({"MODE": "fast"})
    run.log_examples([[1]], None)
    run.commit()
    assert manifest_problem(run.manifest) is None
    assert manifest_problem(good_run(store).manifest) is None


def cli(store, *args):
    env = {**os.environ, "VCI_STORE": str(store), "VCI_CACHE_DIR": str(store.parent / "cache")}
    env.pop("VCI_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "vci", *args], cwd=store.parent, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_lists_past_a_bad_run_and_refuses_to_use_it(store):
    good, bad = good_run(store), good_run(store)
    break_manifest(store, bad.id, lambda doc: [doc])
    listed = cli(store, "runs", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)["runs"]] == [good.id]
    assert f"runs/{bad.id}.json" in listed.stderr and "Traceback" not in listed.stderr
    for args in (["runs", "show", bad.id], ["serve", bad.id, "--port", "0"], ["package", bad.id, "--dry-run"]):
        out = cli(store, *args)
        assert out.returncode == 9, (args, out.stderr)
        assert f"run {bad.id}" in out.stderr and "malformed manifest" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
