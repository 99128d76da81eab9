"""Reading a file once into memory while hashing it, and the zero-copy file that boto3 uploads it from."""

import hashlib
import io
import os

import pytest

from vci.digests import read_hashed
from vci.store.s3_multipart import MemoryFile


@pytest.mark.parametrize("size", [0, 1, 3 * 1024 + 7, 5 * (1 << 20) + 3])
def test_read_hashed_returns_the_bytes_and_their_digest(tmp_path, size):
    path = tmp_path / "blob"
    data = os.urandom(size)
    path.write_bytes(data)
    got, digest = read_hashed(path, chunk=1 << 20)
    assert bytes(got) == data and digest == "sha256:" + hashlib.sha256(data).hexdigest()


def test_read_hashed_passes_on_a_read_error(tmp_path):
    with pytest.raises(IsADirectoryError):
        read_hashed(tmp_path)


def test_memory_file_reads_and_seeks_like_a_file():
    data = memoryview(bytearray(b"0123456789")).toreadonly()
    f = MemoryFile(data)
    assert f.read(4) == b"0123" and f.tell() == 4
    assert f.seek(-2, io.SEEK_END) == 8 and f.read() == b"89" and f.read(5) == b""
    f.seek(1)
    buffer = bytearray(3)
    assert f.readinto(buffer) == 3 and buffer == b"123"
    f.seek(0)
    assert f.read() == bytes(data) and f.readable() and f.seekable()
    with pytest.raises(TypeError):
        memoryview(f._view)[0] = 1  # the view is read-only: boto3 cannot alter the bytes that were hashed
