"""``vci gc``: list (by default) or remove what the store holds for nothing: blobs no run names, unfinished uploads."""

from __future__ import annotations

import click

from ..config import parse_seconds
from ..errors import UsageError
from ..progress import format_bytes
from ..store import open_store
from ..store.gc import DEFAULT_AGE, incomplete_uploads, unreferenced_blobs
from .output import emit, output_option, table
from .runs import settings_for, store_option


@click.command("gc")
@click.option("--uploads", is_flag=True, help="Unfinished uploads: S3 multipart uploads of blobs, local tmp/ files.")
@click.option("--blobs", is_flag=True, help="Blobs no committed run names (unused for --older-than).")
@click.option(
    "--older-than",
    default=f"{DEFAULT_AGE / 3600:.0f}h",
    show_default=True,
    metavar="DURATION",
    help="Only what was last written or used this long ago (600, 10m, 24h): younger ones may still be in use.",
)
@click.option("--yes", is_flag=True, help="Remove them (without it nothing is removed: a dry run).")
@store_option
@output_option
def gc_cmd(uploads, blobs, older_than, yes, store, output):
    """List what the store holds for nothing; remove it with --yes (without it, a dry run).

    --uploads: S3 multipart uploads under the store's blobs/ and temporary files in a local store's tmp/
    that killed writers left. --blobs: blobs that no committed run names and that nothing wrote or
    reused for --older-than (a `vci log` in progress keeps what it uploads or reuses). Runs and the
    ledger are never removed.
    """
    if not uploads and not blobs:
        raise UsageError("name what to collect", hint="vci gc --blobs, vci gc --uploads, or both")
    target = open_store(settings_for(store).store)
    age = parse_seconds(older_than, "--older-than")
    found_uploads = incomplete_uploads(target, age, remove=yes) if uploads else []
    found_blobs = unreferenced_blobs(target, age, remove=yes) if blobs else []
    verb = "removed" if yes else "would remove"
    lines = []
    if uploads:
        rows = [[u.key, u.to_json()["started"], format_bytes(u.size)] for u in found_uploads]
        lines += _section(f"{verb} {len(found_uploads)} unfinished uploads", found_uploads, rows, "KEY", "STARTED")
    if blobs:
        rows = [[b.digest[:19], b.to_json()["used"], format_bytes(b.size)] for b in found_blobs]
        lines += _section(f"{verb} {len(found_blobs)} unreferenced blobs", found_blobs, rows, "BLOB", "LAST USED")
    lines.append(f"in {target.url}" + ("" if yes or not (found_uploads or found_blobs) else "; run again with --yes"))
    result = {
        "dry_run": not yes,
        "store": target.url,
        "uploads": [u.to_json() for u in found_uploads],
        "blobs": [b.to_json() for b in found_blobs],
    }
    emit(output, result, "\n".join(lines))


def _section(summary: str, found: list, rows: list[list[str]], *columns: str) -> list[str]:
    total = format_bytes(sum(item.size for item in found))
    return [f"{summary} ({total})", *([table(rows, [*columns, "SIZE"])] if rows else [])]
