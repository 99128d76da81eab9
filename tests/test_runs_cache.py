"""The local model cache ($VCI_CACHE_DIR) is verified before use: what was changed there is fetched or
extracted again from the store's bytes, never loaded, unpickled or shipped."""

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import vci
from vci.build import Options
from vci.build.package import package
from vci.modeldir import MANIFEST, blob_path
from vci.runs import run_key
from vci.store import open_store

sys.path.insert(0, str(Path(__file__).resolve().parent))

from images import scratch_base_layout  # noqa: E402


class Reader:
    """Reads its artifacts when built: what the model gets is what it serves."""

    def __init__(self, artifacts):
        self.weights = open(artifacts["weights"]).read()
        table = Path(artifacts["table"])
        self.table = {p.relative_to(table).as_posix(): p.read_text() for p in sorted(table.rglob("*")) if p.is_file()}

    def predict(self, data):
        return {"weights": self.weights, "table": self.table}


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    return str(tmp_path / "store")


def logged(store, tmp_path):
    (tmp_path / "weights.txt").write_text("good weights")
    (tmp_path / "table" / "sub").mkdir(parents=True)
    (tmp_path / "table" / "a.csv").write_text("1,2")
    (tmp_path / "table" / "sub" / "b.csv").write_text("3,4")
    run = vci.init("cache", store=store)
    run.log_artifact("weights", tmp_path / "weights.txt")
    run.log_artifact("table", tmp_path / "table")
    run.log_model(Reader, artifacts=["weights", "table"])
    run.commit()
    return run


def overwrite(path: Path, data: bytes) -> None:
    os.chmod(path, 0o644)
    path.write_bytes(data)


EXPECTED = {"weights": "good weights", "table": {"a.csv": "1,2", "sub/b.csv": "3,4"}}


def test_a_pickle_replaced_in_the_cache_is_never_unpickled(store, tmp_path):
    run = logged(store, tmp_path)
    root = run.model_dir()
    marker = tmp_path / "pwned"
    evil = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    overwrite(blob_path(root, run.manifest["model"]["digest"]), evil)
    again = vci.get_run(run.id, store=store)
    assert again.load_model().predict(None) == EXPECTED
    assert not marker.exists()
    assert blob_path(root, run.manifest["model"]["digest"]).read_bytes() != evil  # fetched again


def test_a_manifest_edited_in_the_cache_is_written_again(store, tmp_path):
    run = logged(store, tmp_path)
    root = run.model_dir()
    doc = json.loads((root / MANIFEST).read_text())
    doc["environment"]["env"]["INJECTED"] = "1"
    (root / MANIFEST).write_text(json.dumps(doc))
    assert json.loads((vci.get_run(run.id, store=store).model_dir() / MANIFEST).read_text()) == run.manifest


def test_an_extracted_directory_changed_in_the_cache_is_extracted_again(store, tmp_path):
    run = logged(store, tmp_path)
    assert run.load_model().predict(None) == EXPECTED
    table = run.model_dir() / "work" / "artifacts" / "table"
    (table / "a.csv").write_text("9,9")  # same size, other bytes
    assert vci.get_run(run.id, store=store).load_model().predict(None) == EXPECTED
    (table / "extra.pkl").write_bytes(b"planted")
    assert vci.get_run(run.id, store=store).load_model().predict(None) == EXPECTED
    assert not (table / "extra.pkl").exists()
    os.unlink(table / "sub" / "b.csv")
    os.symlink("../a.csv", table / "sub" / "b.csv")  # a link where a file was
    assert vci.get_run(run.id, store=store).load_model().predict(None) == EXPECTED
    assert not (table / "sub" / "b.csv").is_symlink()


def test_an_extracted_directory_left_alone_is_used_again_as_it_is(store, tmp_path):
    run = logged(store, tmp_path)
    run.load_model()
    table = run.model_dir() / "work" / "artifacts" / "table"
    inode = (table / "a.csv").stat().st_ino
    assert vci.get_run(run.id, store=store).load_model().predict(None) == EXPECTED
    assert (table / "a.csv").stat().st_ino == inode


def layer_files(layout: Path, digest: str) -> dict[str, bytes]:
    blob = layout / "blobs" / "sha256" / digest.split(":")[1]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.read_bytes()))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_package_ships_the_stores_bytes_not_a_blob_tampered_in_the_cache(store, tmp_path, monkeypatch):
    run = logged(store, tmp_path)
    weights = run.manifest["artifacts"]["weights"]["digest"]
    overwrite(blob_path(run.model_dir(), weights), b"evil weights")
    settings = vci.config.load_settings({"store": store, "project": "cache"}, cwd=tmp_path, environ={})
    base = scratch_base_layout(tmp_path / "base")
    result = package(settings, run.id, Options(base=base, layout=str(tmp_path / "layout")))
    layer = next(layer for layer in result["layers"] if layer["name"] == "artifact weights")
    files = layer_files(tmp_path / "layout", layer["digest"])
    assert list(files.values()) == [b"good weights"]


def test_a_run_with_no_blobs_is_fetched_and_served_to_its_clean_refusal(store, tmp_path):
    """Nothing to download used to leave the cache directory uncreated (manifest.json.partial not found)."""
    empty = vci.init("empty", store=store)  # commit() refuses an empty run: write its manifest as an old vci did
    open_store(store).put_json_new(run_key(empty.id), empty._new_manifest())
    run = vci.get_run(empty.id, store=store)
    root = run.model_dir()
    assert json.loads((root / MANIFEST).read_text()) == run.manifest
    env = {**os.environ, "VCI_STORE": store, "VCI_CACHE_DIR": str(tmp_path / "other-cache")}
    env.pop("VCI_DEBUG", None)
    out = subprocess.run(
        [sys.executable, "-m", "vci", "serve", run.id, "--port", "0"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 14, out.stderr
    assert (
        out.stderr.strip().splitlines()[-1]
        == f"vci: error: run {run.id} has no model logged (call run.log_model(...) first)"
    )
    assert "Traceback" not in out.stderr
