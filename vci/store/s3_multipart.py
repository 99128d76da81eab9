"""Parallel S3 multipart uploads, of a file or of bytes in memory, that leave no object unless every part arrived."""

from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    Future,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass

from ..errors import IntegrityError
from .base import Progress

MIB = 1 << 20
MAX_PARTS = 10_000  # S3's limit on parts per upload
TRANSFER_THREADS = 16  # boto3's transfer manager, for bytes already in memory (measured: benchmarks/upload.py)


@dataclass(frozen=True)
class MultipartPlan:
    """How a file is cut: ``part_size`` bytes per part (the last one shorter), ``concurrency`` in flight.

    Up to ``read_ahead`` parts more are read (and hashed) ahead of the senders, so that a sender never
    waits for the reader: memory is at most ``(concurrency + read_ahead) * part_size`` for a file
    streamed from disk (parts hashed again as they are read, and checked before the upload completes).
    A file of one part is instead read once into memory and sent in one request. Streaming measured at
    least as fast as reading a large file into memory (benchmarks/upload.py), with bounded memory.
    """

    part_size: int = 8 * MIB
    concurrency: int = 8
    read_ahead: int = 4

    def part_size_for(self, size: int) -> int:
        """The configured part size, grown (in whole MiB) when the file would need more than 10,000 parts."""
        needed = -(-size // MAX_PARTS)
        return max(self.part_size, -(-needed // MIB) * MIB)


class FileParts:
    """Reads a file's parts in order, hashing them, so that ``verify`` proves what was read (and sent)."""

    def __init__(self, path, digest: str, size: int):
        self.path, self.digest, self.size = path, digest, size
        self._f = open(path, "rb")
        self._hasher, self._read = hashlib.sha256(), 0

    def __call__(self, offset: int, length: int) -> bytes:
        data = os.pread(self._f.fileno(), length, offset)
        self._hasher.update(data)
        self._read += len(data)
        return data

    def verify(self) -> None:
        """Raise IntegrityError unless the bytes read are exactly ``size`` bytes hashing to ``digest``."""
        extra = len(os.pread(self._f.fileno(), 1, self._read))
        actual = "sha256:" + self._hasher.hexdigest()
        if actual != self.digest or self._read + extra != self.size:
            raise IntegrityError(
                f"{self.path} changed while it was uploaded: expected {self.digest} "
                f"({self.size} bytes), read {actual} ({self._read + extra} bytes)",
                hint="do not modify a file while vci logs it; log it again",
            )

    def close(self) -> None:
        self._f.close()


def upload_multipart(
    client,
    bucket: str,
    key: str,
    size: int,
    read_part,
    plan: MultipartPlan,
    progress: Progress | None = None,
    verify=None,
) -> None:
    """Upload ``size`` bytes given by ``read_part(offset, length)`` to ``bucket/key`` in parallel parts.

    Parts are read in order on the calling thread and sent by ``plan.concurrency`` threads. The upload
    is completed (the object becomes visible) only after every part was accepted and ``verify()``
    (when given) passed; on any failure, interruption included, it is aborted so that neither an
    object nor a dangling multipart upload remains.
    """
    # CRC32 named up front: S3 keeps a checksum of the parts' checksums (as boto3's transfers do), and
    # each part's CRC32 is checked on arrival and again when the upload is completed
    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key=key, ContentType="application/octet-stream", ChecksumAlgorithm="CRC32"
    )["UploadId"]
    try:
        parts = _send_parts(client, bucket, key, upload_id, size, read_part, plan, progress)
        if verify is not None:
            verify()
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    except BaseException:
        _abort_quietly(client, bucket, key, upload_id)
        raise


def _send_parts(client, bucket, key, upload_id, size, read_part, plan, progress) -> list[dict]:
    part_size = plan.part_size_for(size)
    done: list[dict] = []
    pending: set[Future] = set()
    pool = ThreadPoolExecutor(plan.concurrency, thread_name_prefix="vci-s3-part")

    def send(number: int, data: bytes) -> tuple[dict, int]:
        # a file-like body: botocore streams it (and rewinds it on a retry); measured faster than bytes
        reply = client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=io.BytesIO(data),
            ChecksumAlgorithm="CRC32",
        )
        return {"PartNumber": number, "ETag": reply["ETag"], "ChecksumCRC32": reply["ChecksumCRC32"]}, len(data)

    try:
        for number, offset in enumerate(range(0, max(size, 1), part_size), start=1):
            while len(pending) >= plan.concurrency + plan.read_ahead:
                pending = _collect(pending, done, progress, FIRST_COMPLETED)
            pending.add(pool.submit(send, number, read_part(offset, part_size)))
        _collect(pending, done, progress, ALL_COMPLETED)
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True)
    return sorted(done, key=lambda p: p["PartNumber"])


def _collect(pending: set[Future], done: list[dict], progress, return_when) -> set[Future]:
    """Wait for some or all parts; record them, report progress, raise a failure."""
    finished, still = wait(pending, return_when=return_when)
    for fut in finished:
        part, sent = fut.result()  # re-raises the part's error here, in the caller's thread
        done.append(part)
        if progress is not None:
            progress(sent)
    return still


def _abort_quietly(client, bucket: str, key: str, upload_id: str) -> None:
    """Abort the upload; a failure to abort must not hide the error that caused it."""
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception:  # noqa: BLE001 - the original error is what the caller needs to see
        import logging

        logging.getLogger(__name__).warning(
            "could not abort multipart upload of s3://%s/%s; a bucket lifecycle rule can remove it", bucket, key
        )


def upload_memory(client, bucket: str, key: str, data: bytes, plan: MultipartPlan) -> None:
    """Upload bytes already in memory through boto3's transfer manager (measured faster here than sending
    the parts ourselves); it aborts the multipart upload on any failure, so no object and no dangling
    upload remain. io.BytesIO shares ``bytes`` rather than copying them."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_threshold=plan.part_size,
        multipart_chunksize=plan.part_size_for(len(data)),
        max_concurrency=max(TRANSFER_THREADS, plan.concurrency),
        use_threads=True,
    )
    client.upload_fileobj(
        io.BytesIO(data), bucket, key, Config=config, ExtraArgs={"ContentType": "application/octet-stream"}
    )
