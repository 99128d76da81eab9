"""The artifact store protocol: content-addressed blobs plus small JSON documents written once."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..digests import hex_of
from ..errors import IntegrityError

# progress(bytes_done_delta) is called as bytes move; stores call it from any thread.
Progress = Callable[[int], None]
VERIFY_ENV = "VCI_VERIFY_BLOBS"  # set (not 0): a put reads back every blob it would skip, whatever its size
log = logging.getLogger("vci")


@dataclass(frozen=True)
class Descriptor:
    """What a blob is: its digest and size, and how many bytes this call actually sent."""

    digest: str
    size: int
    sent: int = 0


@dataclass(frozen=True)
class Upload:
    """A write that never finished (its writer was killed): an open multipart upload on S3, a temporary
    file or directory in a local store's ``tmp/``."""

    key: str  # the blob it was writing (S3) or the temporary file itself (local), relative to the store
    started: float  # when (epoch seconds): S3's Initiated, a temporary file's last change
    size: int  # bytes it holds: the parts uploaded so far, the file's size
    upload_id: str | None = None  # S3's UploadId

    def to_json(self) -> dict:
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started))
        return {"key": self.key, "started": started, "size": self.size, "upload_id": self.upload_id}


@dataclass(frozen=True)
class BlobInfo:
    """A blob in a store, and when it was last written or reused by a put that skipped it."""

    digest: str
    size: int
    used: float  # epoch seconds

    def to_json(self) -> dict:
        used = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.used))
        return {"digest": self.digest, "size": self.size, "used": used}


class Store(Protocol):
    """Where runs live. Keys are ``/``-separated relative paths such as ``runs/<id>.json``.

    Blobs live at ``blobs/sha256/<hex>``; a blob is visible only once complete and verified.
    JSON documents are written once (``put_json_new`` refuses to overwrite: ConflictError) or
    replaced whole (``put_json``); readers never see a partial document.
    """

    url: str
    verify_below: int  # a blob present with up to this many bytes is read back before a put skips it

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        """Whether the blob is present (with ``size`` bytes, when given); its bytes are not read."""

    def put_blob(
        self, path: str | Path, *, digest: str | None = None, size: int | None = None, progress: Progress | None = None
    ) -> Descriptor:
        """Store a file's bytes; skip the upload (sent=0) when the blob is already present and intact
        (see :func:`intact`): a present blob that is not is replaced."""

    def put_bytes(self, data: bytes) -> Descriptor: ...

    def get_blob(self, digest: str, dest: str | Path, *, progress: Progress | None = None) -> Path:
        """Copy a blob to ``dest``, verified against ``digest`` before it appears there."""

    def read_blob(self, digest: str) -> bytes:
        """A small blob's bytes, verified."""

    def put_json_new(self, key: str, doc: dict) -> None: ...

    def put_json(self, key: str, doc: dict) -> None: ...

    def get_json(self, key: str) -> dict: ...

    def blobs(self) -> list[BlobInfo]:
        """Every blob, with its size and when it was last used (written, or reused by a skipping put)."""

    def touch_blob(self, digest: str) -> None:
        """Mark a present blob used now: a put that skips it calls this, so a collector leaves it alone."""

    def delete_blob(self, digest: str, unused_since: float) -> bool:
        """Delete the blob if it has not been used since ``unused_since`` (checked again just before);
        whether it was deleted."""

    def list_keys(self, prefix: str, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """The keys under ``prefix`` (sorted): only those that sort after the key ``after`` (S3's
        ``StartAfter``), and at most ``limit`` of them (a bounded listing: one LIST on S3 up to 1,000)."""

    def incomplete_uploads(self) -> list[Upload]:
        """Writes of vci's not finished (yet, or ever: see vci.store.gc), oldest first."""

    def remove_upload(self, upload: Upload) -> None:
        """Abort or delete one of ``incomplete_uploads()`` (nothing if it is gone already)."""


def corrupted_blob(store_url: str, digest: str, actual: str) -> IntegrityError:
    """The error of a blob in a store whose bytes hash to ``actual`` instead of ``digest``."""
    return IntegrityError(
        f"blob {digest} in {store_url} is corrupted (its bytes hash to {actual})",
        hint=f"log the run again with {VERIFY_ENV}=1: the re-log reads back every blob the store has and "
        "replaces this one, which repairs every run that uses it",
    )


def intact(store_url: str, digest: str, size: int, found: int | None, rehash: Callable[[], str], below: int) -> bool:
    """Whether a put may skip a blob that the store holds with ``found`` bytes (None: absent).

    Its size is always compared; its bytes are read back and hashed by ``rehash()`` when the blob is
    small (at most ``below`` bytes: cheap) or when VCI_VERIFY_BLOBS is set (what the corrupted-blob hint
    asks for). A blob that fails either check is reported and must be replaced by the put."""
    if found is None:
        return False
    if found == size and size > below and os.environ.get(VERIFY_ENV, "0") in ("", "0"):
        return True
    actual = rehash() if found == size else f"{found} bytes, not {size}"
    if actual == digest:
        return True
    log.warning("blob %s in %s is corrupted (%s); storing it again", digest, store_url, actual)
    return False


def blob_key(digest: str) -> str:
    return f"blobs/sha256/{hex_of(digest)}"
