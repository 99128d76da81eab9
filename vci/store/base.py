"""The artifact store protocol: content-addressed blobs plus small JSON documents written once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..digests import hex_of
from ..errors import IntegrityError

# progress(bytes_done_delta) is called as bytes move; stores call it from any thread.
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Descriptor:
    """What a blob is: its digest and size, and how many bytes this call actually sent."""

    digest: str
    size: int
    sent: int = 0


class Store(Protocol):
    """Where runs live. Keys are ``/``-separated relative paths such as ``runs/<id>.json``.

    Blobs live at ``blobs/sha256/<hex>``; a blob is visible only once complete and verified.
    JSON documents are written once (``put_json_new`` refuses to overwrite: ConflictError) or
    replaced whole (``put_json``); readers never see a partial document.
    """

    url: str

    def has_blob(self, digest: str) -> bool: ...

    def put_blob(
        self, path: str | Path, *, digest: str | None = None, size: int | None = None, progress: Progress | None = None
    ) -> Descriptor:
        """Store a file's bytes; skip the upload (sent=0) when the blob is already present."""

    def put_bytes(self, data: bytes) -> Descriptor: ...

    def get_blob(self, digest: str, dest: str | Path, *, progress: Progress | None = None) -> Path:
        """Copy a blob to ``dest``, verified against ``digest`` before it appears there."""

    def read_blob(self, digest: str) -> bytes:
        """A small blob's bytes, verified."""

    def put_json_new(self, key: str, doc: dict) -> None: ...

    def put_json(self, key: str, doc: dict) -> None: ...

    def get_json(self, key: str) -> dict: ...

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (sorted)."""


def corrupted_blob(store_url: str, digest: str, actual: str) -> IntegrityError:
    """The error of a blob in a store whose bytes hash to ``actual`` instead of ``digest``."""
    return IntegrityError(
        f"blob {digest} in {store_url} is corrupted (its bytes hash to {actual})",
        hint="log the run again to replace it",
    )


def blob_key(digest: str) -> str:
    return f"blobs/sha256/{hex_of(digest)}"
