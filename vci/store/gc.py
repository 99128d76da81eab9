"""Removing what killed writers left in a store: open multipart uploads on S3, temporary files in a local store.

A ``vci log`` stopped by SIGTERM or Ctrl-C cleans up after itself (see ``vci.store.sigterm``); one
killed outright (SIGKILL, a lost machine, the OOM killer) cannot. What it left is found here by age:
uploads that started more than ``older_than`` seconds ago (a day by default, far longer than any
upload takes) are no longer being written. Blobs are never touched: removing unreferenced blobs is
another task, with other risks.
"""

from __future__ import annotations

import time

from ..errors import UsageError
from .base import Store, Upload

DEFAULT_AGE = 24 * 3600.0


def incomplete_uploads(store: Store, older_than: float = DEFAULT_AGE, *, remove: bool = False) -> list[Upload]:
    """The unfinished writes in ``store`` older than ``older_than`` seconds; removed too with ``remove``."""
    if older_than < 0:
        raise UsageError(f"the age bound must not be negative: {older_than}", hint="e.g. --older-than 24h")
    cutoff = time.time() - older_than
    found = [u for u in store.incomplete_uploads() if u.started <= cutoff]
    if remove:
        for upload in found:
            store.remove_upload(upload)
    return found
