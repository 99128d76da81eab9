"""Artifact stores: ``open_store(url)`` picks the local directory store or the S3 store."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .base import Descriptor, Progress, Store, blob_key
from .local import LocalStore
from .s3 import S3Store

__all__ = ["Descriptor", "Progress", "Store", "blob_key", "open_store"]


def open_store(url: str | Path) -> Store:
    """``s3://bucket/prefix`` -> S3Store; ``file://DIR`` or a plain path -> LocalStore."""
    text = str(url)
    if text.startswith("s3://"):
        return S3Store.from_url(text)
    if "://" in text and not text.startswith("file://"):
        scheme = text.split("://", 1)[0]
        raise ConfigError(
            f"unsupported store URL scheme {scheme!r} in {text!r}",
            hint="use a directory path, file://DIR or s3://bucket/prefix",
        )
    return LocalStore(text.removeprefix("file://"))
