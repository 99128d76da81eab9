"""Files written whole or not at all (vci.files): one temporary-name scheme, verify, then rename."""

import os
import re
import threading

import pytest

from vci.digests import sha256_bytes
from vci.errors import IntegrityError
from vci.files import commit, copy_chunks, replacing, temporary_for, write_new, write_replacing

TEMP = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp$")


def test_replacing_writes_whole_and_leaves_no_temporary(tmp_path):
    dest = tmp_path / "sub" / "out.bin"
    with replacing(dest) as f:
        f.write(b"new ")
        f.write(b"bytes")
        assert not dest.exists()  # nothing is visible before the block ends
        [temp] = (tmp_path / "sub").iterdir()
        assert TEMP.match(temp.name).group("name") == "out.bin"
    assert dest.read_bytes() == b"new bytes"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["out.bin"]


def test_a_failure_inside_the_block_keeps_the_old_file(tmp_path):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="half way"):
        with replacing(dest) as f:
            f.write(b"half of the new")
            assert dest.read_bytes() == b"old"  # a reader meanwhile sees the old file
            raise RuntimeError("half way")
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_digest_mismatch_writes_nothing(tmp_path):
    dest = tmp_path / "blob"
    dest.write_bytes(b"previous")
    with pytest.raises(IntegrityError, match=re.escape(sha256_bytes(b"evil"))):
        with replacing(dest, digest=sha256_bytes(b"good")) as f:
            f.write(b"evil")
    assert dest.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["blob"]


def test_the_caller_names_the_mismatch_error_and_a_size_is_checked_too(tmp_path):
    def corrupted(actual):
        return IntegrityError(f"the store's copy is corrupted: {actual}")

    with pytest.raises(IntegrityError, match="store's copy is corrupted: " + re.escape(sha256_bytes(b"abc"))):
        with replacing(tmp_path / "a", digest=sha256_bytes(b"abcd"), mismatch=corrupted) as f:
            f.write(b"abc")
    with pytest.raises(IntegrityError, match="3 bytes"):
        with replacing(tmp_path / "b", digest=sha256_bytes(b"abc"), size=4) as f:
            f.write(b"abc")
    with replacing(tmp_path / "c", digest=sha256_bytes(b"abc"), size=3) as f:
        assert copy_chunks([b"a", b"bc"], f) == 3
    assert (tmp_path / "c").read_bytes() == b"abc"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_modes_follow_the_umask_unless_given(tmp_path):
    old = os.umask(0o022)
    try:
        write_replacing(tmp_path / "plain", "text")
        write_replacing(tmp_path / "frozen", b"x", mode=0o444)
        with temporary_for(tmp_path / "d", directory=True) as d:
            dir_mode = d.stat().st_mode & 0o777
    finally:
        os.umask(old)
    assert (tmp_path / "plain").stat().st_mode & 0o777 == 0o644  # readable by others, as open() gives
    assert (tmp_path / "frozen").stat().st_mode & 0o777 == 0o444
    assert dir_mode == 0o755


def test_write_new_refuses_an_existing_file_and_changes_nothing(tmp_path):
    staging = tmp_path / "tmp"
    write_new(tmp_path / "doc.json", "{}", within=staging)
    with pytest.raises(FileExistsError):
        write_new(tmp_path / "doc.json", '{"second": true}', within=staging)
    assert (tmp_path / "doc.json").read_text() == "{}"
    assert list(staging.iterdir()) == []  # staged in the directory named, and cleaned up


def test_temporary_names_are_unique_and_removed_unless_renamed(tmp_path):
    dest = tmp_path / "layer"
    with temporary_for(dest) as a, temporary_for(dest) as b, temporary_for(dest, directory=True) as d:
        assert len({a, b, d}) == 3 and all(TEMP.match(p.name) for p in (a, b, d))
        (d / "inside").write_text("x")
        commit(b, dest)
    assert [p.name for p in tmp_path.iterdir()] == ["layer"]  # a and d (with its content) are gone


def test_a_directory_or_a_symlink_is_committed_as_it_is(tmp_path):
    target = tmp_path / "extracted"
    with temporary_for(target, directory=True) as d:
        (d / "file").write_text("content")
        commit(d, target)
    assert (target / "file").read_text() == "content"
    link = tmp_path / "link"
    with temporary_for(link) as tmp:
        tmp.unlink()
        os.symlink(target / "file", tmp)
        commit(tmp, link)
    assert link.is_symlink() and link.read_text() == "content"


def test_concurrent_writers_of_one_file_never_mix_their_bytes(tmp_path):
    """Each writer has its own temporary file: the result is one writer's whole content."""
    dest = tmp_path / "shared"
    started, other_done = threading.Event(), threading.Event()

    def slow():
        with replacing(dest) as f:
            f.write(b"A" * 1000)
            started.set()
            other_done.wait(10)
            f.write(b"A" * 1000)

    thread = threading.Thread(target=slow)
    thread.start()
    started.wait(10)
    write_replacing(dest, b"B" * 1500)
    assert dest.read_bytes() == b"B" * 1500
    other_done.set()
    thread.join(10)
    assert dest.read_bytes() == b"A" * 2000
