"""The S3 artifact store: content-addressed blobs and JSON documents under ``s3://bucket/prefix``."""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from ..digests import CHUNK, check_digest, sha256_bytes, sha256_file
from ..errors import AuthError, ConfigError, ConflictError, IntegrityError, NotFoundError, StoreError
from ..files import copy_chunks, replacing
from ..redact import remember
from .base import BlobInfo, Descriptor, Progress, Upload, blob_key, corrupted_blob, intact
from .s3_multipart import (
    TRANSFER_THREADS,
    FileParts,
    MultipartPlan,
    upload_memory,
    upload_multipart,
)
from .sigterm import sigterm_raises

_AUTH_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AllAccessDisabled",
    "403",
}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound", "NoSuchUpload"}
_CONFLICT_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict"}


class S3Store:
    """Blobs at ``<prefix>/blobs/sha256/<hex>`` (written only once verified), documents at ``<prefix>/<key>``."""

    list_page_size = 1000  # keys per ListObjectsV2 request (S3's maximum)
    verify_below = 1 << 20  # a blob present is read back (one GET) before a put skips it, up to this size

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client=None,
        endpoint_url: str | None = None,
        plan: MultipartPlan | None = None,
    ):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.plan = plan or MultipartPlan()
        self._client, self._blob_client, self._session = client, None, None
        self._endpoint_url = endpoint_url or os.environ.get("VCI_S3_ENDPOINT_URL") or None

    @classmethod
    def from_url(cls, url: str, **options) -> S3Store:
        """``s3://bucket/prefix`` -> S3Store; endpoint, region and credentials come from the AWS chain."""
        if not url.startswith("s3://"):
            raise ConfigError(f"not an S3 store URL: {url!r}", hint="use s3://bucket/prefix")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise ConfigError(f"no bucket in the store URL {url!r}", hint="use s3://bucket/prefix")
        return cls(bucket, prefix, **options)

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    @property
    def client(self):
        """The boto3 S3 client, created on first use (boto3 is imported only then)."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            # retries come from the AWS chain too (AWS_RETRY_MODE, AWS_MAX_ATTEMPTS, ~/.aws/config)
            config = Config(max_pool_connections=max(TRANSFER_THREADS, self.plan.concurrency) + 4)
            self._session = boto3.session.Session()
            self._client = self._session.client("s3", endpoint_url=self._endpoint_url, config=config)
            found = self._session.get_credentials()
            if found is not None:  # keep the secret key and session token out of every message and log line
                frozen = found.get_frozen_credentials()
                remember(frozen.secret_key, frozen.token)
        return self._client

    @property
    def blob_client(self):
        """The client that sends blob bytes: it does not sign payloads (HTTPS endpoints skip that anyway), as
        a blob's key is its sha256, checked on every read; S3 still checks each part's CRC32."""
        from botocore.config import Config

        if self._blob_client is None:
            client = self.client
            if self._session is None:  # a client given by the caller sends everything
                self._blob_client = client
            else:
                config = client.meta.config.merge(Config(s3={"payload_signing_enabled": False}))
                self._blob_client = self._session.client("s3", endpoint_url=self._endpoint_url, config=config)
        return self._blob_client

    @property
    def endpoint(self) -> str:
        return self._endpoint_url or (self._client.meta.endpoint_url if self._client else "the AWS S3 endpoint")

    def _key(self, key: str) -> str:
        parts = key.strip("/").split("/")
        if not key.strip("/") or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise StoreError(f"store key {key!r} is not a relative path inside the store {self.url}")
        return f"{self.prefix}/{key.strip('/')}" if self.prefix else key.strip("/")

    # -- blobs ---------------------------------------------------------------------------------------
    def has_blob(self, digest: str, size: int | None = None) -> bool:
        found = self._size(digest)
        return found is not None and (size is None or found == size)

    def _size(self, digest: str) -> int | None:
        key = self._key(blob_key(check_digest(digest)))
        try:
            with self._errors(f"checking {key}"):
                return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except NotFoundError:
            return None

    def _intact(self, digest: str, size: int) -> bool:
        return intact(self.url, digest, size, self._size(digest), lambda: self._rehash(digest), self.verify_below)

    def _rehash(self, digest: str) -> str:
        """The sha256 of a stored blob's bytes, streamed (nothing kept)."""
        key = self._key(blob_key(digest))
        hasher = hashlib.sha256()
        with self._errors(f"reading {key}", blob=digest):
            for chunk in self.client.get_object(Bucket=self.bucket, Key=key)["Body"].iter_chunks(CHUNK):
                hasher.update(chunk)
        return "sha256:" + hasher.hexdigest()

    def put_blob(self, path, *, digest=None, size=None, progress: Progress | None = None) -> Descriptor:
        if digest is None and os.path.getsize(path) <= self.plan.part_size:
            data = Path(path).read_bytes()  # one read: the bytes sent are the very bytes hashed
            return self._put_bytes(data, sha256_bytes(data), progress)
        if digest is None:
            digest, size = sha256_file(path)  # first: an unchanged file must send nothing
        check_digest(digest)
        size = os.path.getsize(path) if size is None else size
        if self._intact(digest, size):
            self.touch_blob(digest)
            return Descriptor(digest, size, 0)
        key = self._key(blob_key(digest))
        parts = FileParts(path, digest, size)
        try:
            with sigterm_raises(f"uploading {path}"), self._errors(f"uploading {path} to {key}"):
                upload_multipart(self.blob_client, self.bucket, key, size, parts, self.plan, progress, parts.verify)
        finally:
            parts.close()
        return Descriptor(digest, size, size)

    def put_bytes(self, data: bytes) -> Descriptor:
        return self._put_bytes(data, sha256_bytes(data), None)

    def _put_bytes(self, data: bytes, digest: str, progress: Progress | None) -> Descriptor:
        """Store bytes already in memory and hashed: the bytes sent are the very bytes hashed."""
        if self._intact(digest, len(data)):
            self.touch_blob(digest)
            return Descriptor(digest, len(data), 0)
        key = self._key(blob_key(digest))
        with sigterm_raises(f"uploading {key}"), self._errors(f"uploading {key}"):
            if len(data) <= self.plan.part_size:
                self.blob_client.put_object(
                    Bucket=self.bucket, Key=key, Body=data, ContentType="application/octet-stream"
                )
                if progress is not None:
                    progress(len(data))
            else:
                upload_memory(self.blob_client, self.bucket, key, data, self.plan)
        return Descriptor(digest, len(data), len(data))

    def get_blob(self, digest, dest, *, progress: Progress | None = None) -> Path:
        key = self._key(blob_key(check_digest(digest)))
        corrupted = partial(corrupted_blob, self.url, digest)
        with replacing(dest, digest=digest, mismatch=corrupted) as out, self._errors(f"downloading {key}", blob=digest):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            copy_chunks(body.iter_chunks(CHUNK), out, progress)
        return Path(dest)

    def read_blob(self, digest: str) -> bytes:
        key = self._key(blob_key(check_digest(digest)))
        with self._errors(f"reading {key}", blob=digest):
            data = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        if sha256_bytes(data) != digest:
            raise corrupted_blob(self.url, digest, sha256_bytes(data))
        return data

    # -- JSON documents --------------------------------------------------------------------------------
    def put_json_new(self, key: str, doc: dict) -> None:
        full = self._key(key)
        try:
            with self._errors(f"writing {full}"):
                self.client.put_object(
                    Bucket=self.bucket, Key=full, Body=_encode(doc), ContentType="application/json", IfNoneMatch="*"
                )
        except ConflictError:
            raise ConflictError(
                f"{key} already exists in the store {self.url}", hint="someone else wrote it first; use a new key"
            ) from None

    def put_json(self, key: str, doc: dict) -> None:
        full = self._key(key)
        with self._errors(f"writing {full}"):
            self.client.put_object(Bucket=self.bucket, Key=full, Body=_encode(doc), ContentType="application/json")

    def get_json(self, key: str) -> dict:
        full = self._key(key)
        try:
            with self._errors(f"reading {full}"):
                data = self.client.get_object(Bucket=self.bucket, Key=full)["Body"].read()
        except NotFoundError:
            raise NotFoundError(f"{key} is not in the store {self.url}") from None
        try:
            return json.loads(data)
        except ValueError as exc:
            raise IntegrityError(f"{key} in the store {self.url} is not valid JSON: {exc}") from exc

    def list_keys(self, prefix: str, *, after: str | None = None, limit: int | None = None) -> list[str]:
        base = self._key(prefix) + "/" if prefix.strip("/") else (self.prefix + "/" if self.prefix else "")
        skip = len(self.prefix) + 1 if self.prefix else 0
        request: dict[str, str] = {"Bucket": self.bucket, "Prefix": base}
        if after is not None:  # a bound compared with the keys, never read: it need not be a key
            request["StartAfter"] = f"{self.prefix}/{after}" if self.prefix else after
        if limit is not None and limit <= 0:
            return []
        paging: dict[str, int] = {"PageSize": self.list_page_size if limit is None else min(limit, self.list_page_size)}
        if limit is not None:
            paging["MaxItems"] = limit
        keys: list[str] = []
        pages = self.client.get_paginator("list_objects_v2")
        with self._errors(f"listing {base or '/'}"):
            for page in pages.paginate(**request, PaginationConfig=paging):
                keys.extend(obj["Key"][skip:] for obj in page.get("Contents", []))
        return sorted(keys)[:limit]

    # -- what killed writers left: open multipart uploads of blobs -------------------------------------
    # -- blob lifecycle (vci gc --blobs): used = the later of the blob's and its touch marker's time ------
    # Rewriting a blob to refresh its LastModified would copy it; a reuse writes an empty marker instead.
    def blobs(self) -> list[BlobInfo]:
        sizes = self._listed("blobs/sha256/")
        touched = self._listed("touched/sha256/")
        return [
            BlobInfo(f"sha256:{name}", size, max(when, touched.get(name, (0, 0.0))[1]))
            for name, (size, when) in sorted(sizes.items())
        ]

    def _listed(self, prefix: str) -> dict[str, tuple[int, float]]:
        """``{name: (size, LastModified)}`` of the objects directly under ``prefix``."""
        base = self._key(prefix) + "/"
        found = {}
        with self._errors(f"listing {base}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
                for obj in page.get("Contents", []):
                    found[obj["Key"][len(base) :]] = (obj["Size"], obj["LastModified"].timestamp())
        return found

    def touch_blob(self, digest: str) -> None:
        key = self._key(f"touched/sha256/{check_digest(digest).split(':', 1)[1]}")
        with self._errors(f"marking {key} used"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=b"")

    def delete_blob(self, digest: str, unused_since: float) -> bool:
        hexdigest = check_digest(digest).split(":", 1)[1]
        blob, marker = self._key(blob_key(digest)), self._key(f"touched/sha256/{hexdigest}")
        with self._errors(f"deleting {blob}"):
            times = [self._modified(key) for key in (blob, marker)]
            if times[0] is None or max(t or 0.0 for t in times) > unused_since:
                return False  # gone already, or used since it was listed
            self.client.delete_object(Bucket=self.bucket, Key=blob)
            self.client.delete_object(Bucket=self.bucket, Key=marker)
        return True

    def _modified(self, key: str) -> float | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["LastModified"].timestamp()
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def incomplete_uploads(self) -> list[Upload]:
        """Open multipart uploads under this store's ``blobs/`` (vci's own: nothing else of the bucket)."""
        prefix = self._key("blobs") + "/"
        skip = len(self.prefix) + 1 if self.prefix else 0
        found = []
        with self._errors(f"listing the multipart uploads under {prefix}"):
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    size = self._parts_size(upload["Key"], upload["UploadId"])
                    found.append(
                        Upload(upload["Key"][skip:], upload["Initiated"].timestamp(), size, upload["UploadId"])
                    )
        return sorted(found, key=lambda u: (u.started, u.key))

    def _parts_size(self, key: str, upload_id: str) -> int:
        pages = self.client.get_paginator("list_parts").paginate(Bucket=self.bucket, Key=key, UploadId=upload_id)
        return sum(part["Size"] for page in pages for part in page.get("Parts", []))

    def remove_upload(self, upload: Upload) -> None:
        key = self._key(upload.key)
        if not upload.key.startswith("blobs/") or not upload.upload_id:
            raise StoreError(f"{upload.key!r} is not a multipart upload of a blob in {self.url}")
        try:
            with self._errors(f"aborting the multipart upload of {key}"):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload.upload_id)
        except NotFoundError:
            pass  # completed or aborted meanwhile

    # -- errors ----------------------------------------------------------------------------------------
    @contextmanager
    def _errors(self, action: str, *, blob: str | None = None):
        """Turn botocore failures during ``action`` into vci errors (never naming credentials)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            raise self._client_error(exc, action, blob) from exc
        except BotoCoreError as exc:
            raise self._botocore_error(exc, action) from exc

    def _client_error(self, exc, action: str, blob: str | None):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code == "NoSuchBucket":
            return StoreError(
                f"the bucket {self.bucket!r} does not exist at {self.endpoint}",
                hint="create the bucket, or fix VCI_STORE / the store in vci.yaml",
            )
        if code in _AUTH_CODES:
            return AuthError(
                f"S3 refused {action} in {self.url}: {code}",
                hint="check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and the bucket policy",
            )
        if code in _MISSING_CODES:
            what = f"blob {blob}" if blob else action
            return NotFoundError(f"{what} is not in the store {self.url}")
        if code in _CONFLICT_CODES:
            return ConflictError(f"{action} in {self.url}: the key already exists")
        return StoreError(
            f"S3 failed {action} in {self.url}: {code}: {error.get('Message', '')}".rstrip(": "),
            hint="retry; if it persists check the bucket and the endpoint",
        )

    def _botocore_error(self, exc, action: str):
        from botocore.exceptions import (
            ConnectionError,
            CredentialRetrievalError,
            HTTPClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
            return AuthError(
                f"no usable AWS credentials for {self.url}",
                hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use an instance role",
            )
        if isinstance(exc, (ConnectionError, HTTPClientError)):
            return StoreError(
                f"cannot reach the S3 endpoint {self.endpoint} while {action}",
                hint="check VCI_S3_ENDPOINT_URL / AWS_ENDPOINT_URL and the network",
            )
        return StoreError(
            f"S3 failed {action} in {self.url}: {type(exc).__name__}",
            hint="retry; if it persists check the store configuration",
        )


def _code(exc) -> str:
    return str(
        exc.response.get("Error", {}).get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    )


def _encode(doc: dict) -> bytes:
    return json.dumps(doc, indent=2, sort_keys=True).encode()
