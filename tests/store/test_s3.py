"""What only the S3 store has: failures injected at the real moto server, error mapping, URLs and endpoints."""

import os
import urllib.request

import pytest

from s3server import free_port
from vci.digests import sha256_file
from vci.errors import AuthError, IntegrityError, NotFoundError, StoreError
from vci.store import open_store
from vci.store.base import blob_key
from vci.store.s3 import S3Store
from vci.store.s3_multipart import MultipartPlan

MIB = 1 << 20
SMALL_PARTS = MultipartPlan(part_size=5 * MIB, concurrency=3)  # a file above 5 MiB streams from disk in parts


def refuse_part(client, number: int) -> list:
    """Make the real server refuse part ``number`` of every upload: it gets an unknown upload id (moto: 500)."""
    refused = []

    def hook(params, **_):
        if params.get("PartNumber") == number:
            params["UploadId"] = "no-such-upload"
            refused.append(number)

    client.meta.events.register("before-parameter-build.s3.UploadPart", hook)
    return refused


def all_keys(client, bucket):
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


UPLOADS = {
    "from-memory": lambda store, src: store.put_bytes(src.read_bytes()),  # boto3's transfer manager
    "streamed": lambda store, src: store.put_blob(src),
}


@pytest.mark.parametrize("upload", UPLOADS.values(), ids=UPLOADS.keys())
def test_refused_part_aborts_the_upload(s3_bucket, tmp_path, upload):
    client, bucket = s3_bucket
    store = S3Store(bucket, "p", client=client, plan=SMALL_PARTS)
    store.put_json("runs/a.json", {"id": "a"})
    before = all_keys(client, bucket)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(20 * MIB))
    refused = refuse_part(client, 3)
    with pytest.raises(StoreError, match="S3 failed uploading") as info:
        upload(store, src)
    assert type(info.value) is StoreError and set(refused) == {3}
    digest = sha256_file(src)[0]
    assert not store.has_blob(digest)
    assert all_keys(client, bucket) == before
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_file_changed_during_upload_is_not_stored(s3_bucket, tmp_path):
    client, bucket = s3_bucket
    # one part in flight: the third part is read only after the first one was reported done
    store = S3Store(bucket, "p", client=client, plan=MultipartPlan(part_size=5 * MIB, concurrency=1, read_ahead=0))
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(12 * MIB))
    digest, size = sha256_file(src)

    def rewrite_after_first_part(delta):
        with open(src, "r+b") as f:
            f.seek(size - 10)
            f.write(b"0123456789")

    with pytest.raises(IntegrityError, match="changed while it was uploaded"):
        store.put_blob(src, digest=digest, size=size, progress=rewrite_after_first_part)
    assert all_keys(client, bucket) == []
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_open_store_with_endpoint_from_vci_env(s3_bucket, moto_endpoint, monkeypatch, tmp_path):
    client, bucket = s3_bucket
    monkeypatch.setenv("VCI_S3_ENDPOINT_URL", moto_endpoint)
    store = open_store(f"s3://{bucket}/team/vci")
    assert isinstance(store, S3Store) and store.url == f"s3://{bucket}/team/vci"
    desc = store.put_bytes(b"hello")
    assert all_keys(client, bucket) == [f"team/vci/{blob_key(desc.digest)}"]
    assert store.read_blob(desc.digest) == b"hello"


def test_open_store_with_aws_endpoint_env(s3_bucket, moto_endpoint, monkeypatch):
    client, bucket = s3_bucket
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    store = open_store(f"s3://{bucket}")
    store.put_json_new("runs/x.json", {"id": "x"})
    assert all_keys(client, bucket) == ["runs/x.json"]
    assert store.list_keys("runs") == ["runs/x.json"]


def test_missing_bucket_says_how_to_fix(s3_bucket, tmp_path):
    client, _ = s3_bucket
    store = S3Store("vci-no-such-bucket", "p", client=client)
    with pytest.raises(StoreError, match="does not exist.*create the bucket") as info:
        store.put_json("runs/a.json", {})
    assert type(info.value) is StoreError
    with pytest.raises(StoreError, match="create the bucket"):
        store.list_keys("runs")


def test_unknown_access_key_is_an_auth_error(s3_bucket, moto_endpoint):
    client, bucket = s3_bucket
    store = S3Store(bucket, "p", client=client)
    _moto_auth(moto_endpoint, "0")  # the server now checks credentials: the dummy key is unknown to it
    try:
        with pytest.raises(AuthError) as info:
            store.get_json("runs/a.json")
    finally:
        _moto_auth(moto_endpoint, "inf")
    assert "testing" not in str(info.value)  # credentials are never part of a message
    with pytest.raises(NotFoundError):
        store.get_json("runs/a.json")


def test_unreachable_endpoint_is_named(aws_env, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    port = free_port()  # nothing listens there: connections are refused at once
    store = S3Store.from_url("s3://bucket/p", endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(StoreError, match=f"cannot reach the S3 endpoint http://127.0.0.1:{port}"):
        store.get_json("runs/a.json")


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "gs://bucket"])
def test_bad_urls(url):
    from vci.errors import ConfigError

    with pytest.raises(ConfigError):
        S3Store.from_url(url)


def test_from_url_splits_bucket_and_prefix():
    store = S3Store.from_url("s3://ml-artifacts/team/vci/")
    assert (store.bucket, store.prefix, store.url) == ("ml-artifacts", "team/vci", "s3://ml-artifacts/team/vci")


def test_many_keys_are_paginated(s3_bucket):
    client, bucket = s3_bucket
    store = S3Store(bucket, "p", client=client)
    store.list_page_size = 7
    names = [f"runs/{i:04d}.json" for i in range(30)]  # more than four pages
    for name in reversed(names):
        client.put_object(Bucket=bucket, Key=f"p/{name}", Body=b"{}")
    pages = []
    client.meta.events.register("after-call.s3.ListObjectsV2", lambda parsed, **_: pages.append(parsed))
    assert store.list_keys("runs") == names
    assert len(pages) == 5 and all(len(p["Contents"]) <= 7 for p in pages)
    pages.clear()
    assert store.list_keys("runs", after="runs/0009.json", limit=5) == names[10:15]
    assert len(pages) == 1 and pages[0]["MaxKeys"] == 5  # one bounded LIST, S3 skipping what sorts first
    pages.clear()
    assert store.list_keys("runs", after="runs/0019.json", limit=9) == names[20:29]
    assert len(pages) == 2  # 7 + 2: each page at most list_page_size, stopping at the limit


def test_huge_files_get_bigger_parts():
    plan = MultipartPlan(part_size=8 * MIB)
    assert plan.part_size_for(100 * MIB) == 8 * MIB
    assert plan.part_size_for(200_000 * MIB) == 20 * MIB  # 10,000 parts at most


def _moto_auth(endpoint: str, count: str) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", method="POST", data=count.encode(), headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(request, timeout=10).read()


def test_interrupted_streamed_upload_leaves_nothing(s3_bucket, tmp_path):
    client, bucket = s3_bucket
    store = S3Store(bucket, "p", client=client, plan=SMALL_PARTS)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(16 * MIB))

    def interrupt(delta):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.put_blob(src, progress=interrupt)
    assert all_keys(client, bucket) == []
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_streamed_upload_round_trip(s3_bucket, tmp_path):
    client, bucket = s3_bucket
    store = S3Store(bucket, "p", client=client, plan=SMALL_PARTS)
    data = os.urandom(11 * MIB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    sent = []
    desc = store.put_blob(src, progress=sent.append)
    assert (desc.size, desc.sent, sum(sent), len(sent)) == (len(data), len(data), len(data), 3)
    assert store.read_blob(desc.digest) == data
    assert store.put_blob(src).sent == 0


def signed_payloads(client) -> list[tuple[str, bytes]]:
    """(operation, x-amz-content-sha256) of each request the client sends from now on."""
    seen = []

    def hook(request, event_name, **_):
        seen.append((event_name.rsplit(".", 1)[-1], request.headers.get("X-Amz-Content-SHA256")))

    client.meta.events.register("before-send.s3", hook)
    return seen


def test_blob_bytes_go_unsigned_with_a_checksum_documents_signed(s3_bucket, moto_endpoint, tmp_path):
    client, bucket = s3_bucket
    store = S3Store(bucket, "p", endpoint_url=moto_endpoint, plan=SMALL_PARTS)
    documents, blobs = signed_payloads(store.client), signed_payloads(store.blob_client)
    src = tmp_path / "weights.bin"
    src.write_bytes(os.urandom(12 * MIB))
    checksums = []
    store.blob_client.meta.events.register(
        "before-send.s3.UploadPart", lambda request, **_: checksums.append(request.headers.get("x-amz-checksum-crc32"))
    )
    desc = store.put_blob(src)
    store.put_json("runs/a.json", {"id": "a"})
    assert desc.sent == 12 * MIB and store.read_blob(desc.digest) == src.read_bytes()
    parts = [value for op, value in blobs if op == "UploadPart"]
    assert parts == [b"UNSIGNED-PAYLOAD"] * 3 and len(checksums) == 3 and all(checksums)
    puts = [value for op, value in documents if op == "PutObject"]
    assert len(puts) == 1 and puts[0] not in (None, b"UNSIGNED-PAYLOAD")  # over http a document is signed
    assert S3Store(bucket, "p", client=client).blob_client is client  # a given client sends everything
