"""The store protocol, checked the same way against the local store and the S3 store (on a real moto server)."""

import os

import pytest

from vci.digests import sha256_bytes, sha256_file
from vci.errors import ConflictError, IntegrityError, NotFoundError, StoreError
from vci.store.base import Descriptor, blob_key

MIB = 1 << 20


def write(path, data: bytes):
    path.write_bytes(data)
    return path


class Deltas(list):
    """A progress callback that records every delta it is given."""

    def __call__(self, delta: int) -> None:
        self.append(delta)


def test_blob_round_trip(case, tmp_path):
    data = os.urandom(300_000)
    src = write(tmp_path / "weights.bin", data)
    deltas = Deltas()
    desc = case.store.put_blob(src, progress=deltas)
    assert desc == Descriptor(sha256_bytes(data), len(data), len(data))
    assert sum(deltas) == len(data)
    assert case.store.has_blob(desc.digest)
    assert not case.store.has_blob(sha256_bytes(b"never stored"))
    dest = case.store.get_blob(desc.digest, tmp_path / "out" / "weights.bin")
    assert dest.read_bytes() == data
    assert case.store.read_blob(desc.digest) == data
    assert blob_key(desc.digest) in case.store.list_keys("blobs")


def test_put_bytes_round_trip_and_dedupe(case):
    first = case.store.put_bytes(b'{"a": 1}')
    assert first == Descriptor(sha256_bytes(b'{"a": 1}'), 8, 8)
    assert case.store.put_bytes(b'{"a": 1}').sent == 0
    assert case.store.read_blob(first.digest) == b'{"a": 1}'


def blob_keys(case) -> list[str]:
    return [k for k in case.raw_keys() if not k.startswith("touched/")]


def test_unchanged_file_is_sent_once(case, tmp_path):
    src = write(tmp_path / "w.bin", os.urandom(200_000))
    first = case.store.put_blob(src)
    keys = case.raw_keys()
    deltas = Deltas()
    again = case.store.put_blob(src, progress=deltas)
    known = case.store.put_blob(src, digest=first.digest, size=first.size)
    assert (again.digest, again.size, again.sent) == (first.digest, first.size, 0)
    assert (known.digest, known.size, known.sent) == (first.digest, first.size, 0)
    assert sum(deltas) == 0
    assert blob_keys(case) == keys  # nothing written but, on S3, the empty marker of a reuse (vci gc)


def test_empty_file(case, tmp_path):
    desc = case.store.put_blob(write(tmp_path / "empty", b""))
    assert (desc.digest, desc.size) == (sha256_bytes(b""), 0)
    assert case.store.get_blob(desc.digest, tmp_path / "back").read_bytes() == b""


def test_tampered_blob_is_refused_and_nothing_reaches_dest(case, tmp_path):
    desc = case.store.put_blob(write(tmp_path / "w.bin", b"original bytes" * 1000))
    case.tamper(desc.digest, b"evil bytes" * 1000)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(IntegrityError, match="corrupted"):
        case.store.get_blob(desc.digest, out / "w.bin")
    assert list(out.iterdir()) == []  # neither the file nor a partial download
    with pytest.raises(IntegrityError):
        case.store.read_blob(desc.digest)


def test_tampered_blob_does_not_replace_an_existing_dest(case, tmp_path):
    desc = case.store.put_blob(write(tmp_path / "w.bin", b"good" * 100))
    case.tamper(desc.digest, b"bad" * 100)
    dest = write(tmp_path / "dest.bin", b"previous content")
    with pytest.raises(IntegrityError):
        case.store.get_blob(desc.digest, dest)
    assert dest.read_bytes() == b"previous content"


def test_missing_blob(case, tmp_path):
    digest = sha256_bytes(b"absent")
    with pytest.raises(NotFoundError, match=digest):
        case.store.get_blob(digest, tmp_path / "x")
    with pytest.raises(NotFoundError):
        case.store.read_blob(digest)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("size", [1000, 12 * MIB])  # one request, and the multipart path of S3
def test_wrong_digest_is_never_stored(case, tmp_path, size):
    src = write(tmp_path / "w.bin", os.urandom(size))
    claimed = sha256_bytes(b"something else")
    with pytest.raises(IntegrityError, match="changed|match"):
        case.store.put_blob(src, digest=claimed, size=size)
    assert not case.store.has_blob(claimed)
    assert not case.store.has_blob(sha256_file(src)[0])
    assert case.raw_keys() == []
    if case.kind == "s3":
        assert case.multipart_uploads() == []


def test_multipart_sized_upload(case, tmp_path):
    data = os.urandom(20 * MIB + 123)
    src = write(tmp_path / "big.bin", data)
    deltas = Deltas()
    desc = case.store.put_blob(src, progress=deltas)
    assert (desc.digest, desc.size, desc.sent) == (sha256_bytes(data), len(data), len(data))
    assert sum(deltas) == len(data) and len(deltas) >= 1
    if case.kind == "s3":  # S3 marks an object assembled from N parts with an ETag ending in -N
        head = case.client.head_object(Bucket=case.bucket, Key=f"{case.prefix}/{blob_key(desc.digest)}")
        assert head["ETag"].strip('"').endswith("-5")
        assert case.multipart_uploads() == []
    back = tmp_path / "back.bin"
    got = Deltas()
    case.store.get_blob(desc.digest, back, progress=got)
    assert back.read_bytes() == data and sum(got) == len(data)
    assert case.store.put_blob(src).sent == 0


def test_interrupted_upload_leaves_nothing(case, tmp_path):
    src = write(tmp_path / "big.bin", os.urandom(12 * MIB))
    case.store.put_json("runs/a.json", {"id": "a"})
    keys = case.raw_keys()

    def interrupt(delta):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        case.store.put_blob(src, progress=interrupt)
    assert not case.store.has_blob(sha256_file(src)[0])
    assert case.raw_keys() == keys
    assert case.store.list_keys("") == ["runs/a.json"]
    if case.kind == "s3":
        assert case.multipart_uploads() == []


def test_put_json_new_refuses_to_overwrite(case):
    case.store.put_json_new("runs/r1.json", {"id": "r1", "n": 1})
    with pytest.raises(ConflictError, match="runs/r1.json"):
        case.store.put_json_new("runs/r1.json", {"id": "r1", "n": 2})
    assert case.store.get_json("runs/r1.json") == {"id": "r1", "n": 1}


def test_put_json_overwrites(case):
    case.store.put_json("ledger/staging/head.json", {"release": 1})
    case.store.put_json("ledger/staging/head.json", {"release": 2})
    assert case.store.get_json("ledger/staging/head.json") == {"release": 2}


def test_get_json_missing(case):
    with pytest.raises(NotFoundError, match="runs/nope.json"):
        case.store.get_json("runs/nope.json")


def test_get_json_not_json(case):
    desc = case.store.put_bytes(b"not json {")
    with pytest.raises(StoreError, match="not valid JSON"):
        case.store.get_json(blob_key(desc.digest))


def test_list_keys(case):
    for key in ["runs/b.json", "runs/a.json", "runs/sub/c.json", "runsx/d.json", "ledger/e.json"]:
        case.store.put_json(key, {"key": key})
    expected = ["runs/a.json", "runs/b.json", "runs/sub/c.json"]
    assert case.store.list_keys("runs") == expected
    assert case.store.list_keys("runs/") == expected
    assert case.store.list_keys("runs/sub") == ["runs/sub/c.json"]
    assert case.store.list_keys("run") == []  # a prefix is a directory, not a string prefix
    assert case.store.list_keys("nothing") == []
    assert case.store.list_keys("") == sorted(expected + ["runsx/d.json", "ledger/e.json"])


def test_list_keys_after_a_bound_and_at_most_a_limit(case):
    for key in ["runs/a.json", "runs/b.json", "runs/c.json", "runs/sub/d.json", "runsx/e.json"]:
        case.store.put_json(key, {"key": key})
    assert case.store.list_keys("runs", after="runs/a.json") == ["runs/b.json", "runs/c.json", "runs/sub/d.json"]
    assert case.store.list_keys("runs", after="runs/b", limit=2) == ["runs/b.json", "runs/c.json"]  # any string
    assert case.store.list_keys("runs", limit=1) == ["runs/a.json"]
    assert case.store.list_keys("runs", after="runs/sub/d.json") == []  # nothing of runsx/ leaks in
    assert case.store.list_keys("runs", after="a", limit=0) == []


@pytest.mark.parametrize("key", ["../escape.json", "runs/../../escape.json"])
def test_keys_cannot_escape_the_store(case, key):
    with pytest.raises(StoreError):
        case.store.put_json(key, {})
