"""Pages of write-once JSON documents in a store (runs, ledger records): newest keys first, only the page
read, in parallel, and for listings that are only shown, each document cached locally once read.

The cache serves what is printed (``vci runs list``, ``vci history``), never what is loaded, served,
packaged or deployed: those read the store and verify what they read."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .errors import IntegrityError, NotFoundError
from .fetch import cache_root
from .files import write_replacing
from .store.base import Store

READERS = 8  # documents read at once (S3 round trips overlap; a local store barely notices)
Problem = Callable[[str, dict], "str | None"]  # what is wrong with a document read from a key, or None
log = logging.getLogger("vci")


def newest_keys(store: Store, prefix: str) -> list[str]:
    """The ``*.json`` keys directly under ``prefix``, newest first (vci's ids sort by time)."""
    keys = (k for k in store.list_keys(prefix) if k.endswith(".json") and "/" not in k[len(prefix) :])
    return sorted(keys, reverse=True)


def read_pages(
    store: Store, keys: list[str], page: int, *, cache: bool = False, problem: Problem | None = None
) -> Iterator[list[dict]]:
    """The documents of ``keys``, ``page`` at a time (each page read in parallel); a document gone
    between the listing and the read is left out, and so is one that is not a JSON object or in which
    ``problem(key, doc)`` finds something wrong (with a warning naming its key)."""
    folder = _cache_folder(store) if cache else None
    with ThreadPoolExecutor(READERS) as pool:
        for start in range(0, len(keys), max(page, 1)):
            batch = keys[start : start + max(page, 1)]
            yield [doc for doc in pool.map(lambda key: _read(store, key, folder, problem), batch) if doc is not None]


def newest_documents(
    store: Store,
    prefix: str,
    limit: int | None,
    keep: Callable[[dict], bool] = lambda doc: True,
    *,
    cache: bool = False,
    problem: Problem | None = None,
) -> list[dict]:
    """The newest ``limit`` documents under ``prefix`` that ``keep`` accepts (all of them for None),
    reading only as many pages as that takes (``cache``: for what is only shown; ``problem``: see
    read_pages)."""
    found: list[dict] = []
    page = 64 if limit is None else max(limit, 16)
    pages = read_pages(store, newest_keys(store, prefix), page=page, cache=cache, problem=problem)
    for docs in pages:
        found.extend(doc for doc in docs if keep(doc))
        if limit is not None and len(found) >= limit:
            break
    return found if limit is None else found[:limit]


def _cache_folder(store: Store) -> Path:
    return cache_root() / "documents" / hashlib.sha256(store.url.encode()).hexdigest()[:16]


def _read(store: Store, key: str, folder: Path | None, problem: Problem | None) -> dict | None:
    cached = folder / key if folder is not None else None
    if cached is not None:
        try:
            doc = json.loads(cached.read_text())
            if isinstance(doc, dict) and not (problem and problem(key, doc)):
                return doc
        except (OSError, ValueError):
            pass  # not cached yet, or a torn or foreign file: read the store
    try:
        doc = store.get_json(key)
    except NotFoundError:
        return None
    except IntegrityError as exc:  # not JSON: one bad document must not hide the others
        log.warning("skipped %s: %s", key, exc.message)
        return None
    trouble = (
        f"a JSON {type(doc).__name__}, not an object" if not isinstance(doc, dict) else problem and problem(key, doc)
    )
    if trouble:
        log.warning("skipped %s in %s: %s", key, store.url, trouble)
        return None
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            write_replacing(cached, json.dumps(doc, sort_keys=True))
        except OSError:
            pass  # a read-only cache only costs speed
    return doc
