"""Directory archives are reproducible; extraction refuses entries that escape the target (tar-slip)."""

import io
import os
import tarfile

import pytest

from vci.archive import archive_directory, extract_archive
from vci.digests import sha256_file
from vci.errors import IntegrityError, UsageError


def make_tree(root):
    (root / "sub").mkdir(parents=True)
    (root / "b.txt").write_text("b")
    (root / "sub" / "a.bin").write_bytes(b"\x00\x01")
    os.symlink("b.txt", root / "link")


def test_same_tree_same_digest_whatever_the_mtimes(tmp_path):
    make_tree(tmp_path / "one")
    make_tree(tmp_path / "two")
    os.utime(tmp_path / "two" / "b.txt", (1, 1))
    a = archive_directory(tmp_path / "one", tmp_path / "one.tar")
    b = archive_directory(tmp_path / "two", tmp_path / "two.tar")
    assert sha256_file(a) == sha256_file(b)
    names = tarfile.open(a).getnames()
    assert names == sorted(names)
    out = extract_archive(a, tmp_path / "out")
    assert (out / "sub" / "a.bin").read_bytes() == b"\x00\x01" and os.readlink(out / "link") == "b.txt"


def test_link_leaving_the_directory_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    os.symlink("/etc/passwd", tmp_path / "d" / "evil")
    with pytest.raises(UsageError, match="link leaving"):
        archive_directory(tmp_path / "d", tmp_path / "x.tar")


def _tar_with(tmp_path, build):
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as tar:
        build(tar)
    return path


@pytest.mark.parametrize("name", ["../escape.txt", "/abs.txt", "ok/../../escape.txt"])
def test_tar_slip_paths_are_refused(tmp_path, name):
    def build(tar):
        info = tarfile.TarInfo(name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))

    with pytest.raises(IntegrityError, match="escape"):
        extract_archive(_tar_with(tmp_path, build), tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_symlink_out_then_write_through_is_refused(tmp_path):
    def build(tar):
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/tmp"
        tar.addfile(link)

    with pytest.raises(IntegrityError, match="points outside"):
        extract_archive(_tar_with(tmp_path, build), tmp_path / "out")
