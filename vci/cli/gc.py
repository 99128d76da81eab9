"""``vci gc --uploads``: list (by default) or remove what killed ``vci log`` runs left in the store."""

from __future__ import annotations

import click

from ..config import parse_seconds
from ..errors import UsageError
from ..progress import format_bytes
from ..store import open_store
from ..store.gc import DEFAULT_AGE, incomplete_uploads
from .output import emit, output_option, table
from .runs import settings_for, store_option


@click.command("gc")
@click.option("--uploads", is_flag=True, help="Unfinished uploads: S3 multipart uploads of blobs, local tmp/ files.")
@click.option(
    "--older-than",
    default=f"{DEFAULT_AGE / 3600:.0f}h",
    show_default=True,
    metavar="DURATION",
    help="Only what started this long ago (600, 10m, 24h): younger ones may still be written.",
)
@click.option("--yes", is_flag=True, help="Remove them (without it nothing is removed: a dry run).")
@store_option
@output_option
def gc_cmd(uploads, older_than, yes, store, output):
    """List the unfinished uploads that killed writers left in the store; remove them with --yes.

    Blobs and runs are never removed: only S3 multipart uploads under the store's blobs/ prefix and
    temporary files in a local store's tmp/, older than --older-than.
    """
    if not uploads:
        raise UsageError("name what to collect", hint="vci gc --uploads (the only kind so far)")
    target = open_store(settings_for(store).store)
    found = incomplete_uploads(target, parse_seconds(older_than, "--older-than"), remove=yes)
    total = sum(u.size for u in found)
    verb = "removed" if yes else "would remove"
    summary = f"{verb} {len(found)} unfinished uploads ({format_bytes(total)}) in {target.url}"
    rows = [[u.key, u.to_json()["started"], format_bytes(u.size)] for u in found]
    text = "\n".join([summary, *([table(rows, ["KEY", "STARTED", "SIZE"])] if rows else [])])
    if found and not yes:
        text += "\nrun again with --yes to remove them"
    emit(output, {"dry_run": not yes, "store": target.url, "uploads": [u.to_json() for u in found]}, text)
