"""The local model cache stays within its bound: least recently used runs go, never one being served."""

import os
import time

import pytest

import vci
from vci.config import load_settings
from vci.deploy import deploy, undeploy
from vci.errors import UsageError
from vci.fetch import cache_root, trim_model_cache
from vci.modeldir import MANIFEST, in_use
from vci.progress import parse_bytes


class Sized:
    def __init__(self, artifacts):
        self.n = len(open(artifacts["blob"], "rb").read())

    def predict(self, data):
        return self.n


def test_sizes_are_read_as_format_bytes_prints_them():
    assert parse_bytes("1048576") == 1 << 20 and parse_bytes("512MiB") == 512 << 20
    assert parse_bytes("10G") == 10 << 30 and parse_bytes("1.5 gb") == int(1.5 * (1 << 30))
    for bad in ("ten", "-1", "5 PB", ""):
        with pytest.raises(UsageError, match="is not a size"):
            parse_bytes(bad, "VCI_CACHE_MAX_BYTES")


def cached(models, name: str, size: int, used: float):
    folder = models / name
    (folder / "blobs").mkdir(parents=True)
    (folder / "blobs" / "b").write_bytes(b"x" * size)
    (folder / MANIFEST).write_text("{}")
    os.utime(folder / MANIFEST, (used, used))
    return folder


def test_the_least_recently_used_go_first_and_the_held_and_the_kept_stay(tmp_path):
    models, now = tmp_path / "models", time.time()
    oldest, served, older, keep = (
        cached(models, n, 1000, now - age) for n, age in (("a", 400), ("b", 300), ("c", 200), ("d", 0))
    )
    with in_use(served):  # a server holds it
        removed = trim_model_cache(models, 2500, keep=keep)
    assert removed == [oldest, older] and served.exists() and keep.exists()
    assert trim_model_cache(models, 0, keep=keep) == []  # 0: no bound


def test_fetching_runs_past_the_bound_keeps_the_newest_and_the_deployed(tmp_path, monkeypatch):
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VCI_CACHE_MAX_BYTES", "300KiB")
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"store": str(tmp_path / "store"), "project": "p"}, cwd=tmp_path, environ={})
    runs = []
    for n in range(4):
        (tmp_path / f"b{n}").write_bytes(os.urandom(120_000))
        run = vci.init("p", settings=settings)
        run.log_artifact("blob", tmp_path / f"b{n}")
        run.log_model(Sized, artifacts=["blob"])
        run.commit()
        runs.append(run)
    try:
        deploy(settings, runs[0], "staging")  # its model directory is served from the cache
        dirs = [run.model_dir() for run in runs[1:]]
        kept = sorted(p.name for p in (cache_root() / "models").iterdir())
        assert runs[0].model_dir().name in kept and dirs[-1].name in kept and dirs[0].name not in kept
        assert runs[0].get_deployed_model("staging").predict([1]) == 120_000
    finally:
        undeploy(settings, "staging")
