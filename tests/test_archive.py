"""Directory archives are reproducible; extraction refuses entries that escape the target (tar-slip)."""

import io
import os
import subprocess
import tarfile

import pytest

from vci.archive import archive_directory, extract_archive, matches_archive
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


def test_archive_and_extract_round_trip_is_recognised_as_matching(tmp_path):
    make_tree(tmp_path / "src")
    (tmp_path / "src" / "sub" / "hard").hardlink_to(tmp_path / "src" / "b.txt")
    tar = archive_directory(tmp_path / "src", tmp_path / "a.tar")
    out = extract_archive(tar, tmp_path / "out", max_size=tar.stat().st_size)
    assert matches_archive(tar, out)
    (out / "sub" / "a.bin").write_bytes(b"\x00\x02")
    assert not matches_archive(tar, out)


@pytest.mark.parametrize(
    "change",
    [
        lambda out: (out / "b.txt").write_text("c"),  # same size, other bytes
        lambda out: (out / "planted.pkl").write_bytes(b"x"),
        lambda out: (out / "sub" / "a.bin").unlink(),
        lambda out: (out / "link").unlink() or os.symlink("sub", out / "link"),
        lambda out: (out / "b.txt").unlink() or os.symlink("sub/a.bin", out / "b.txt"),
    ],
    ids=["bytes", "extra file", "missing file", "link retargeted", "file made a link"],
)
def test_a_changed_extraction_does_not_match(tmp_path, change):
    make_tree(tmp_path / "src")
    tar = archive_directory(tmp_path / "src", tmp_path / "a.tar")
    out = extract_archive(tar, tmp_path / "out")
    change(out)
    assert not matches_archive(tar, out)


def _gzipped_tar_of_zeros(path, size):
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("zeros.bin")
        info.size = size
        tar.addfile(info, io.BytesIO(bytes(size)))
    return path


def test_a_compressed_tar_is_refused_before_anything_is_written(tmp_path):
    bomb = _gzipped_tar_of_zeros(tmp_path / "bomb.tar.gz", 64 << 20)  # 64 MiB of zeros in ~64 KB
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(IntegrityError, match="gzip-compressed"):
        extract_archive(bomb, tmp_path / "out", max_size=bomb.stat().st_size)
    assert list((tmp_path / "out").iterdir()) == []


def test_contents_larger_than_the_recorded_size_are_refused_early(tmp_path):
    header = tarfile.TarInfo("huge.bin")
    header.size = 1 << 30  # the header claims 1 GiB; the archive holds 4 KiB
    path = tmp_path / "claims.tar"
    path.write_bytes(header.tobuf(format=tarfile.PAX_FORMAT) + bytes(4096))
    with pytest.raises(IntegrityError, match="would expand to 1073741824 bytes"):
        extract_archive(path, tmp_path / "out", max_size=path.stat().st_size)
    assert list((tmp_path / "out").iterdir()) == []


def test_an_archive_larger_than_recorded_is_refused(tmp_path):
    make_tree(tmp_path / "src")
    tar = archive_directory(tmp_path / "src", tmp_path / "a.tar")
    with pytest.raises(IntegrityError, match="over the 100 recorded"):
        extract_archive(tar, tmp_path / "out", max_size=100)


def test_a_sparse_file_is_refused(tmp_path):
    (tmp_path / "src").mkdir()
    with open(tmp_path / "src" / "sparse.bin", "wb") as f:
        f.truncate(256 << 20)
    path = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "-cf", str(path), "-C", str(tmp_path / "src"), "sparse.bin"], check=True)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(IntegrityError, match="sparse"):
        extract_archive(path, tmp_path / "out", max_size=path.stat().st_size)
    assert list((tmp_path / "out").iterdir()) == []
