"""A blob whose bytes do not match its digest is replaced by the next put of those bytes (both stores)."""

import os

import pytest

from vci.digests import sha256_bytes
from vci.errors import IntegrityError

VERIFY_ENV = "VCI_VERIFY_BLOBS"  # the name the hint and the README give

MIB = 1 << 20


def write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.fixture(autouse=True)
def no_verify_env(monkeypatch):
    monkeypatch.delenv(VERIFY_ENV, raising=False)


def test_a_small_corrupted_blob_is_replaced_by_a_re_put(case, tmp_path):
    data = os.urandom(50_000)
    src = write(tmp_path / "w.bin", data)
    digest = case.store.put_blob(src).digest
    case.tamper(digest, os.urandom(len(data)))  # same size: only the bytes tell
    again = case.store.put_blob(src)
    assert again.sent == len(data)
    assert case.store.read_blob(digest) == data


def test_corrupted_bytes_put_again_are_replaced(case):
    data = b'{"weights": [1, 2, 3]}' * 100
    digest = case.store.put_bytes(data).digest
    case.tamper(digest, data[::-1])
    assert case.store.put_bytes(data).sent == len(data)
    assert case.store.read_blob(digest) == data


def test_a_big_blob_of_the_wrong_size_is_replaced(case, tmp_path):
    case.store.verify_below = 0  # as for a blob above the size read back on every put
    data = os.urandom(300_000)
    src = write(tmp_path / "w.bin", data)
    digest = case.store.put_blob(src).digest
    case.tamper(digest, data[:1000])  # truncated
    assert not case.store.has_blob(digest, len(data)) and case.store.has_blob(digest)
    assert case.store.put_blob(src).sent == len(data)
    assert case.store.read_blob(digest) == data


@pytest.mark.parametrize("size", [300_000, 6 * MIB])  # S3: one request, and a multipart upload
def test_following_the_hint_repairs_a_big_blob_of_the_right_size(case, tmp_path, monkeypatch, size):
    case.store.verify_below = 0
    data = os.urandom(size)
    src = write(tmp_path / "w.bin", data)
    digest = case.store.put_blob(src).digest
    case.tamper(digest, os.urandom(size))
    with pytest.raises(IntegrityError) as caught:
        case.store.get_blob(digest, tmp_path / "out.bin")
    assert f"{VERIFY_ENV}=1" in caught.value.hint
    assert case.store.put_blob(src).sent == 0  # without it, a same-size blob is taken on its size
    monkeypatch.setenv(VERIFY_ENV, "1")
    assert case.store.put_blob(src).sent == size
    assert case.store.get_blob(digest, tmp_path / "out.bin").read_bytes() == data
    if case.kind == "s3":
        assert case.multipart_uploads() == []


def test_an_intact_blob_is_not_sent_again_when_checked(case, tmp_path, monkeypatch):
    monkeypatch.setenv(VERIFY_ENV, "1")
    src = write(tmp_path / "w.bin", os.urandom(200_000))
    first = case.store.put_blob(src)
    keys = case.raw_keys()
    assert case.store.put_blob(src).sent == 0 and case.store.put_bytes(src.read_bytes()).sent == 0
    assert [k for k in case.raw_keys() if not k.startswith("touched/")] == keys  # a reuse marker at most
    assert case.store.read_blob(first.digest) == src.read_bytes()
    assert case.store.has_blob(first.digest, first.size) and not case.store.has_blob(sha256_bytes(b"x"), 1)
