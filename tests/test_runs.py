"""Runs on the local store: logging, committing, reading back and loading exactly as the server does."""

import io
import json
import math
import os
import re
import tarfile
import time

import pytest

import vci
from vci.errors import IntegrityError, ModelValidationError, NotFoundError, UsageError
from vci.runs import RUN_ID, run_key


class Echo:
    def __init__(self, artifacts):
        self.text = open(artifacts["greeting"]).read()
        self.table = os.listdir(artifacts["table"])
        import pickle

        with open(artifacts["obj"], "rb") as f:
            self.obj = pickle.load(f)

    def predict(self, data):
        return {"greeting": self.text, "files": sorted(self.table), "obj": self.obj, "data": data}


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    return str(tmp_path / "store")


def logged_run(store, tmp_path):
    (tmp_path / "greeting.txt").write_text("hello")
    (tmp_path / "table").mkdir()
    (tmp_path / "table" / "x.csv").write_text("1,2")
    run = vci.init("demo", store=store)
    run.log_artifact("greeting", str(tmp_path / "greeting.txt"))
    run.log_artifact("table", tmp_path / "table")
    run.log_artifact("obj", {"k": [1, 2]})
    run.log_model(Echo, artifacts=["greeting", "table", "obj"])
    run.log_requirements(["pytest"])
    run.log_examples([[1]], [[1]])
    return run


def test_log_commit_get_load(store, tmp_path):
    run = logged_run(store, tmp_path)
    assert RUN_ID.fullmatch(run.id)
    version = run.commit()
    assert version.startswith("sha256:") and run.commit() == version
    back = vci.get_run(run.id, store=store)
    assert back.version == version and back.project == "demo"
    model = back.load_model()
    assert model.predict(7) == {"greeting": "hello", "files": ["x.csv"], "obj": {"k": [1, 2]}, "data": 7}
    paths = back.fetch_artifacts()
    assert open(paths["greeting"]).read() == "hello" and paths["greeting"].endswith("greeting.txt")
    assert [r.id for r in vci.list_runs(store=store)] == [run.id]
    assert vci.list_runs(store=store, project="other") == []


def test_relogging_an_unchanged_artifact_sends_nothing(store, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1 << 20))
    first = vci.init("p", store=store).log_artifact("w", big)
    run = vci.init("p", store=store)
    run.log_artifact("w", big)
    from vci.store import open_store

    desc = open_store(store).put_blob(big, digest=first["digest"])
    assert desc.sent == 0 and run._artifacts["w"]["digest"] == first["digest"]


def test_uncommitted_run_is_invisible_and_committed_is_immutable(store, tmp_path):
    run = logged_run(store, tmp_path)
    with pytest.raises(NotFoundError, match="logged but is not committed.*run.commit"):
        vci.get_run(run.id, store=store)
    run.commit()
    with pytest.raises(UsageError, match="immutable"):
        run.log_artifact("more", str(tmp_path / "greeting.txt"))


def test_run_ids_are_time_sorted_with_32_random_bits(monkeypatch):
    from vci.runs import new_run_id

    monkeypatch.setattr(time, "gmtime", lambda *a: time.struct_time((2026, 11, 24, 7, 12, 3, 1, 328, 0)))
    ids = {new_run_id() for _ in range(1000)}  # one second: 16 random bits gave ~8 collisions here
    assert len(ids) == 1000 and all(RUN_ID.fullmatch(i) and len(i) == 24 for i in ids)
    assert all(i.startswith("20261124-071203-") for i in ids)
    monkeypatch.setattr(time, "gmtime", lambda *a: time.struct_time((2026, 11, 24, 7, 12, 4, 1, 328, 0)))
    assert new_run_id() > max(ids)
    assert RUN_ID.fullmatch("20261124-071203-3f9a")  # ids of runs logged before stay valid


def test_bad_inputs(store, tmp_path):
    run = vci.init("p", store=store)
    with pytest.raises(UsageError, match="does not exist"):
        run.log_artifact("w", str(tmp_path / "missing.bin"))
    with pytest.raises(UsageError, match="not valid"):
        run.log_artifact("../escape", {"x": 1})
    with pytest.raises(ModelValidationError, match="artifacts not logged yet: weights"):
        run.log_model(Echo, artifacts=["weights"])
    with pytest.raises(ModelValidationError, match="instance"):
        run.log_model(Echo.__new__(Echo))
    with pytest.raises(UsageError, match="looks like a secret"):
        run.log_environment({"API_TOKEN": "x"})
    with pytest.raises(UsageError, match="expected outputs"):
        run.log_examples([1, 2], [1])
    with pytest.raises(UsageError, match="not a run id"):
        vci.get_run("../../etc/passwd", store=store)


def test_tampered_blob_is_caught_before_loading(store, tmp_path):
    run = logged_run(store, tmp_path)
    run.commit()
    digest = run.manifest["model"]["digest"]
    blob = tmp_path / "store" / "blobs" / "sha256" / digest.split(":")[1]
    os.chmod(blob, 0o644)
    blob.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(IntegrityError):
        vci.get_run(run.id, store=store).load_model()


def test_manifest_written_last_and_whole(store, tmp_path):
    run = logged_run(store, tmp_path)
    run.commit()
    doc = json.loads((tmp_path / "store" / "runs" / f"{run.id}.json").read_text())
    assert doc["model"]["class"].endswith("Echo")
    assert set(doc["artifacts"]) == {"greeting", "table", "obj"}
    assert doc["artifacts"]["table"]["kind"] == "directory"
    assert not list((tmp_path / "store" / "tmp").iterdir())


def test_a_directory_artifact_that_is_a_compressed_tar_is_refused(store, tmp_path):
    """A manifest naming a gzip bomb as a directory artifact (its digest and size right): refused, nothing extracted."""
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tar:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 32 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    run = vci.init("p", store=store)
    run.log_artifact("table", bomb)
    run.log_model(Echo, artifacts=["table"])
    run.commit()
    key = tmp_path / "store" / "runs" / f"{run.id}.json"
    doc = json.loads(key.read_text())
    doc["artifacts"]["table"]["kind"] = "directory"
    key.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match="gzip-compressed"):
        vci.get_run(run.id, store=store).load_model()
    assert not list((tmp_path / "cache").rglob("zeros.bin"))


@pytest.mark.parametrize(
    "call, problem",
    [
        (lambda run: run.log_examples([[math.nan]]), "must be JSON: Out of range float"),
        (lambda run: run.log_examples([[math.inf]], [[1]]), "must be JSON: Out of range float"),
        (lambda run: run.log_examples([[1]], [[-math.inf]]), "must be JSON: Out of range float"),
        (lambda run: run.log_examples([(1, 2)]), "would change when written as JSON"),
        (lambda run: run.log_examples([{1: "a"}]), "would change when written as JSON"),
        (lambda run: run.log_examples([{1, 2}]), "must be JSON"),
        (lambda run: run.log_examples([[1]], "x"), "expected outputs must be a list"),
        (lambda run: run.log_environment({"X": 1}), "environment variable X must have a string value, got int"),
        (lambda run: run.log_environment({"X": None}), "must have a string value, got NoneType"),
        (lambda run: run.log_environment({"X": "a\0b"}), "must have a string value, got a NUL character"),
        (lambda run: run.log_environment({1: "x"}), "1 is not an environment variable name"),
        (lambda run: run.log_environment({"": "x"}), "'' is not an environment variable name"),
        (lambda run: run.log_environment({"A=B": "x"}), "'A=B' is not an environment variable name"),
        (lambda run: run.log_environment("LOG_LEVEL"), "a list of variable names or a {name: value} dict, not str"),
        (lambda run: run.log_environment(["VCI_TEST_SURELY_UNSET"]), "VCI_TEST_SURELY_UNSET is not set here"),
        (lambda run: run.log_environment({"DB_PASS": "x"}), "DB_PASS looks like a secret"),
        (lambda run: run.log_artifact("w\n", {"x": 1}), "is not valid"),
    ],
)
def test_values_a_manifest_cannot_hold_are_refused_on_entry(store, call, problem):
    run = vci.init("p", store=store)
    with pytest.raises(UsageError, match=re.escape(problem)):
        call(run)
    assert run._examples is None and run._environment["env"] == {} and run._artifacts == {}


@pytest.mark.parametrize("project", ["../../x", "a/b", ".hidden", 5, "x" * 65, "with space"])
def test_a_project_name_that_cannot_name_a_directory_or_label_is_refused(store, project):
    with pytest.raises(UsageError, match="project name .* is not valid"):
        vci.init(project, store=store)


def test_harmless_environment_and_finite_examples_are_recorded(store, monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "debug")
    run = vci.init("p", store=store)
    run.log_environment(["LOG_LEVEL"])
    run.log_environment({"MODEL_NAME": "iris"})
    run.log_examples([[1.5, {"a": [1, None]}]], [[0]])
    run.log_artifact("obj", {"k": 1})
    run.commit()
    manifest = vci.get_run(run.id, store=store).manifest
    assert manifest["environment"]["env"] == {"LOG_LEVEL": "debug", "MODEL_NAME": "iris"}
    assert manifest["examples"]["inputs"] == [[1.5, {"a": [1, None]}]]


def test_a_run_id_with_anything_after_it_is_not_one():
    for bad in ("20261124-071203-3f9a\n", "20261124-071203-3f9a ", "20261124-071203-3f9aff"):
        assert not RUN_ID.fullmatch(bad)
        with pytest.raises(UsageError, match="not a run id"):
            run_key(bad)
