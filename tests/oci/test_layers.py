"""Reproducible layers: normalised sorted tar, gzip without timestamps, one-pass hashing, the layer cache."""

import builtins
import gzip
import hashlib
import os
import tarfile

import pytest

from vci.errors import BuildError, UsageError
from vci.oci import OCI_LAYER_GZIP
from vci.oci.layers import Entry, LayerCache, sha256_of_tar, tree_entries, write_layer

EPOCH = 1_700_000_000


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "src"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("x = 1\n")
    (root / "pkg" / "sub" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "pkg" / "sub" / "run.sh", 0o700)
    os.chmod(root / "pkg" / "__init__.py", 0o600)
    (root / "b.txt").write_text("b")
    os.symlink("b.txt", root / "a-link")
    return root


def _members(path):
    with tarfile.open(path) as tar:
        return tar.getmembers()


def test_same_entries_give_same_bytes_and_other_epochs_differ(tmp_path, tree):
    entries = tree_entries(tree, "/opt/app")
    one = write_layer(entries, tmp_path / "one", epoch=EPOCH)
    os.utime(tree / "b.txt", (1, 1))  # file times on disk must not matter
    two = write_layer(list(reversed(entries)), tmp_path / "two", epoch=EPOCH)
    other = write_layer(entries, tmp_path / "three", epoch=EPOCH + 1)
    assert (tmp_path / "one").read_bytes() == (tmp_path / "two").read_bytes()
    assert one.digest == two.digest and one.diff_id == two.diff_id
    assert other.digest != one.digest


def test_digests_and_size_describe_the_written_bytes(tmp_path, tree):
    layer = write_layer(tree_entries(tree, "/opt/app"), tmp_path / "blob", epoch=EPOCH)
    blob = (tmp_path / "blob").read_bytes()
    assert layer.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert layer.size == len(blob)
    assert layer.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()
    assert layer.media_type == OCI_LAYER_GZIP
    assert sha256_of_tar(tree_entries(tree, "/opt/app"), epoch=EPOCH) == layer.diff_id


def test_gzip_header_has_no_timestamp_or_name(tmp_path, tree):
    write_layer(tree_entries(tree, "/x"), tmp_path / "blob", epoch=EPOCH)
    header = (tmp_path / "blob").read_bytes()[:10]
    assert header[:3] == b"\x1f\x8b\x08"
    assert header[3] == 0, "no FNAME/FEXTRA/FCOMMENT flags"
    assert header[4:8] == b"\0\0\0\0", "mtime 0"


def test_entries_are_sorted_normalised_and_have_parents(tmp_path, tree):
    entries = tree_entries(tree, "/opt/app") + [Entry.bytes("/etc/vci/conf", b"k=v")]
    write_layer(entries, tmp_path / "blob", epoch=EPOCH)
    members = _members(tmp_path / "blob")
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[:3] == ["etc", "etc/vci", "etc/vci/conf"]
    assert {"opt", "opt/app", "opt/app/pkg", "opt/app/pkg/sub"} <= set(names)
    by_name = {m.name: m for m in members}
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", EPOCH)
    assert by_name["opt/app/pkg"].isdir() and by_name["opt/app/pkg"].mode == 0o755
    assert by_name["opt/app/pkg/__init__.py"].mode == 0o644
    assert by_name["opt/app/pkg/sub/run.sh"].mode == 0o755
    assert by_name["opt/app/a-link"].issym() and by_name["opt/app/a-link"].linkname == "b.txt"


def test_later_entries_replace_earlier_ones_at_the_same_path(tmp_path):
    write_layer([Entry.bytes("/f", b"old"), Entry.bytes("f", b"new")], tmp_path / "blob", epoch=EPOCH)
    with tarfile.open(tmp_path / "blob") as tar:
        assert tar.getnames() == ["f"] and tar.extractfile("f").read() == b"new"


def test_sources_are_read_once_and_the_blob_never_read_back(tmp_path, tree, monkeypatch):
    opened = []
    real_open = builtins.open

    def recording_open(path, mode="r", *args, **kwargs):
        opened.append((os.fspath(path), mode))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    write_layer(tree_entries(tree, "/opt/app"), tmp_path / "blob", epoch=EPOCH)
    monkeypatch.undo()
    reads = [p for p, mode in opened if "r" in mode]
    assert sorted(reads) == sorted(
        str(p) for p in [tree / "b.txt", tree / "pkg" / "__init__.py", tree / "pkg" / "sub" / "run.sh"]
    )
    assert [mode for p, mode in opened if "blob" in os.path.basename(p)] == ["wb"]


def test_compression_level_changes_the_blob_not_the_diff_id(tmp_path):
    entries = [Entry.bytes("/data", b"abcdefgh" * 50_000)]
    fast = write_layer(entries, tmp_path / "l1", epoch=EPOCH, level=1)
    small = write_layer(entries, tmp_path / "l9", epoch=EPOCH, level=9)
    assert fast.diff_id == small.diff_id
    assert fast.digest != small.digest and small.size < fast.size
    with pytest.raises(UsageError, match="out of range"):
        write_layer(entries, tmp_path / "bad", epoch=EPOCH, level=10)


def test_cache_reuses_a_layer_without_reading_its_entries(tmp_path):
    cache = LayerCache(tmp_path / "cache")
    source = tmp_path / "weights"
    source.write_bytes(b"w" * 1000)
    first = cache.build("sha256:" + "1" * 64, [Entry.file("/w", source)], epoch=EPOCH)
    source.unlink()  # a rebuild would fail now
    again = cache.build("sha256:" + "1" * 64, [Entry.file("/w", source)], epoch=EPOCH)
    assert again == first and again.path.is_file()
    assert (tmp_path / "cache" / "layers" / ("sha256=" + "1" * 64) / "gzip-6" / "layer.json").is_file()
    with pytest.raises(BuildError, match="does not exist"):
        cache.build("sha256:" + "1" * 64, [Entry.file("/w", source)], epoch=EPOCH, level=1)


def test_cache_rebuilds_when_the_blob_is_damaged(tmp_path):
    cache = LayerCache(tmp_path)
    layer = cache.build("k", [Entry.bytes("/a", b"a")], epoch=EPOCH)
    layer.path.write_bytes(b"short")
    rebuilt = cache.build("k", [Entry.bytes("/a", b"a")], epoch=EPOCH)
    assert rebuilt.digest == layer.digest and rebuilt.path.stat().st_size == layer.size


@pytest.mark.parametrize("bad", ["", "/", "../etc/passwd", "/a/../../b"])
def test_bad_image_paths_are_refused(bad):
    with pytest.raises(UsageError, match="bad path"):
        Entry.bytes(bad, b"")


def test_bad_cache_keys_are_refused(tmp_path):
    with pytest.raises(UsageError, match="cache key"):
        LayerCache(tmp_path).build("../escape", [], epoch=EPOCH)
