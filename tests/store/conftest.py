"""Fixtures for the store conformance suite: every test runs against the local store and a real moto S3 server."""

import os
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from s3server import dummy_aws_env, reset_moto, start_moto  # noqa: E402
from vci.store.base import blob_key  # noqa: E402
from vci.store.local import LocalStore  # noqa: E402


@pytest.fixture(scope="session")
def moto_endpoint():
    """One moto server for the session (in a thread of this process); its endpoint URL."""
    server, endpoint = start_moto()
    yield endpoint
    server.stop()


@pytest.fixture
def aws_env(monkeypatch):
    """Dummy credentials only; no real AWS configuration or endpoint leaks into a test."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "VCI_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in dummy_aws_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # an injected failure fails fast


@pytest.fixture
def s3_bucket(moto_endpoint, aws_env):
    """A fresh server state with one new bucket; ``(boto3 client, bucket name)``."""
    import boto3

    reset_moto(moto_endpoint)
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    bucket = f"vci-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


class LocalCase:
    """The local store plus raw access to what it wrote, for tampering and inspection."""

    kind = "local"

    def __init__(self, root: Path):
        self.root = root
        self.store = LocalStore(root)

    def tamper(self, digest: str, data: bytes) -> None:
        path = self.root / blob_key(digest)
        os.chmod(path, 0o644)
        path.write_bytes(data)

    def raw_keys(self) -> list[str]:
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and p.relative_to(self.root).parts[0] != "tmp"
        )


class S3Case:
    """An S3 store on moto under a prefix, plus the raw client for tampering and inspection."""

    kind = "s3"

    def __init__(self, client, bucket: str, prefix: str = "team/vci"):
        from vci.store.s3 import S3Store
        from vci.store.s3_multipart import MultipartPlan

        self.client, self.bucket, self.prefix = client, bucket, prefix
        # small parts so that a few MiB already take the multipart path
        self.store = S3Store(bucket, prefix, client=client, plan=MultipartPlan(part_size=5 << 20, concurrency=3))

    def tamper(self, digest: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{blob_key(digest)}", Body=data)

    def raw_keys(self) -> list[str]:
        reply = self.client.list_objects_v2(Bucket=self.bucket)
        return sorted(obj["Key"].removeprefix(self.prefix + "/") for obj in reply.get("Contents", []))

    def multipart_uploads(self) -> list:
        return self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])


@pytest.fixture(params=["local", "s3"])
def case(request, tmp_path):
    if request.param == "local":
        return LocalCase(tmp_path / "store")
    client, bucket = request.getfixturevalue("s3_bucket")
    return S3Case(client, bucket)


@pytest.fixture
def store(case):
    return case.store
