"""Parallel S3 multipart upload of one file that completes only if the bytes sent hash to the expected digest."""

from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from ..errors import IntegrityError
from .base import Progress

MIB = 1 << 20
MAX_PARTS = 10_000  # S3's limit on parts per upload


@dataclass(frozen=True)
class MultipartPlan:
    """How a file is cut: ``part_size`` bytes per part (the last one shorter), ``concurrency`` in flight.

    Up to ``read_ahead`` parts more are read (and hashed) ahead of the senders, so that a sender never
    waits for the reader: memory is at most ``(concurrency + read_ahead) * part_size``.
    """

    part_size: int = 8 * MIB
    concurrency: int = 8
    read_ahead: int = 4

    def part_size_for(self, size: int) -> int:
        """The configured part size, grown (in whole MiB) when the file would need more than 10,000 parts."""
        needed = -(-size // MAX_PARTS)
        return max(self.part_size, -(-needed // MIB) * MIB)


def upload_multipart(client, bucket: str, key: str, path, digest: str, size: int, plan: MultipartPlan,
                     progress: Progress | None = None) -> None:
    """Upload ``path`` to ``bucket/key`` in parallel parts, hashing the bytes as they are read.

    The upload is completed (and the object becomes visible) only after every part was accepted and
    the bytes read hash to ``digest`` with ``size`` bytes; on any failure, interruption included, it
    is aborted so that neither an object nor a dangling multipart upload remains.
    """
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key,
                                               ContentType="application/octet-stream")["UploadId"]
    try:
        parts = _send_parts(client, bucket, key, upload_id, path, digest, size, plan, progress)
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                         MultipartUpload={"Parts": parts})
    except BaseException:
        _abort_quietly(client, bucket, key, upload_id)
        raise


def _send_parts(client, bucket, key, upload_id, path, digest, size, plan, progress) -> list[dict]:
    part_size = plan.part_size_for(size)
    hasher, read = hashlib.sha256(), 0
    done: list[dict] = []
    pending: set[Future] = set()
    pool = ThreadPoolExecutor(plan.concurrency, thread_name_prefix="vci-s3-part")

    def send(number: int, data: bytes) -> tuple[dict, int]:
        # a file-like body: botocore streams it (and rewinds it on a retry); measured faster than bytes
        reply = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                   Body=io.BytesIO(data))
        return {"PartNumber": number, "ETag": reply["ETag"]}, len(data)

    try:
        with open(path, "rb") as f:
            for number in range(1, max(1, -(-size // part_size)) + 1):
                while len(pending) >= plan.concurrency + plan.read_ahead:
                    pending = _collect(pending, done, progress, FIRST_COMPLETED)
                data = os.pread(f.fileno(), part_size, read)
                hasher.update(data)
                read += len(data)
                pending.add(pool.submit(send, number, data))
            extra = os.pread(f.fileno(), 1, read)
        _check_bytes(path, digest, size, "sha256:" + hasher.hexdigest(), read + len(extra))
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


def _check_bytes(path, digest: str, size: int, actual: str, actual_size: int) -> None:
    if actual != digest or actual_size != size:
        raise IntegrityError(f"{path} changed while it was uploaded: expected {digest} ({size} bytes), "
                             f"read {actual} ({actual_size} bytes)",
                             hint="do not modify a file while vci logs it; log it again")


def _abort_quietly(client, bucket: str, key: str, upload_id: str) -> None:
    """Abort the upload; a failure to abort must not hide the error that caused it."""
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception:  # noqa: BLE001 - the original error is what the caller needs to see
        import logging
        logging.getLogger(__name__).warning("could not abort multipart upload of s3://%s/%s; "
                                            "a bucket lifecycle rule can remove it", bucket, key)
