"""chunk_reader: the one file-like reader over streamed chunks (registry blobs, docker save)."""

import tarfile

import pytest

from vci.oci.stream import chunk_reader


def test_reads_of_any_size_cross_chunk_boundaries_until_the_end():
    chunks = [b"ab", b"", b"cdefg", b"h", b"ijklmnop"]
    with chunk_reader(iter(chunks)) as f:
        assert [f.read(3), f.read(3), f.read(3)] == [b"abc", b"def", b"ghi"]
        assert f.read() == b"jklmnop" and f.read(3) == b""
    big = [bytes([i]) * 1000 for i in range(50)]
    with chunk_reader(big) as f:
        assert f.read(8192) == b"".join(big)[:8192]  # one read of n gives n bytes, whatever the chunk sizes
        assert len(f.read(100_000)) == 50_000 - 8192


def test_closing_the_reader_closes_the_generator_behind_it():
    state = {"closed": False}

    def blob():
        try:
            yield b"x" * 10
            yield b"y" * 10
        finally:
            state["closed"] = True

    with chunk_reader(blob()) as f:
        assert f.read(5) == b"xxxxx"
    assert state["closed"]


def test_the_sources_errors_become_oserror_naming_the_source():
    def broken():
        yield b"start"
        raise ConnectionResetError("daemon went away")

    with chunk_reader(broken(), errors=(ConnectionResetError,), what="the save stream") as f:
        assert f.read(5) == b"start"
        with pytest.raises(OSError, match="the save stream failed: daemon went away"):
            f.read(1)

    def corrupt():
        yield b"data"
        raise ValueError("digest mismatch")  # not in errors: raised as it is

    with chunk_reader(corrupt()) as f, pytest.raises(ValueError, match="digest mismatch"):
        f.read()


def test_a_tar_stream_reads_through_it(tmp_path):
    (tmp_path / "member").write_bytes(b"m" * 3000)
    with tarfile.open(tmp_path / "a.tar", "w") as tar:
        tar.add(tmp_path / "member", arcname="member")
    data = (tmp_path / "a.tar").read_bytes()
    chunks = [data[i : i + 777] for i in range(0, len(data), 777)]
    with chunk_reader(chunks) as f, tarfile.open(fileobj=f, mode="r|") as tar:
        member = next(iter(tar))
        assert tar.extractfile(member).read() == b"m" * 3000
