"""Loading a model directory verifies every blob before anything is unpickled, each read once for it."""

from __future__ import annotations

import pytest

from vci import modeldir
from vci.errors import IntegrityError

from .conftest import build_model_dir
from .models import BrokenInitModel, EchoModel

BALLAST = 256 * 1024 * 1024


def rchar() -> int:
    """Bytes this process has read through read() and the like (every thread; page cache included)."""
    with open("/proc/self/io") as f:
        return int(dict(line.split(": ") for line in f.read().splitlines())["rchar"])


def test_every_blob_is_read_once_and_checked_before_the_class_unpickles(tmp_path, monkeypatch):
    build_model_dir(tmp_path / "model", EchoModel, artifacts={"greeting": b"hello", "ballast": bytes(BALLAST)})
    read_when_unpickled, unpickle = [], modeldir.load_model_class

    def watched(model_dir, manifest):
        read_when_unpickled.append(rchar() - before)
        return unpickle(model_dir, manifest)

    monkeypatch.setattr(modeldir, "load_model_class", watched)
    before = rchar()
    model, _, _ = modeldir.load_model(tmp_path / "model", tmp_path / "work")
    read = rchar() - before
    assert model.greeting == "hello" and read_when_unpickled[0] >= BALLAST  # the artifacts were checked first
    assert BALLAST <= read < 1.1 * BALLAST  # each blob read once to verify it (the ballast is never opened)


def test_a_changed_artifact_stops_the_load_before_the_model_is_constructed(tmp_path):
    build_model_dir(tmp_path / "model", BrokenInitModel, artifacts={"weights": b"v1" * 1000})
    manifest, _ = modeldir.read_manifest(tmp_path / "model")
    blob = modeldir.blob_path(tmp_path / "model", manifest["artifacts"]["weights"]["digest"])
    blob.write_bytes(b"v2" * 1000)  # same size: only the bytes tell
    with pytest.raises(IntegrityError, match="does not match its record"):  # not BrokenInitModel's RuntimeError
        modeldir.load_model(tmp_path / "model", tmp_path / "work")


def test_a_missing_class_blob_is_an_integrity_error(tmp_path):
    build_model_dir(tmp_path / "model", EchoModel, artifacts={"greeting": b"hello"})
    manifest, _ = modeldir.read_manifest(tmp_path / "model")
    modeldir.blob_path(tmp_path / "model", manifest["model"]["digest"]).unlink()
    with pytest.raises(IntegrityError, match="lacks blob"):
        modeldir.load_model(tmp_path / "model", tmp_path / "work")
