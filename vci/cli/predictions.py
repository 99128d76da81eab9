"""``vci predictions``: the payload records an environment's server logged, read back from its file or S3 sink."""

from __future__ import annotations

import time

import click

from ..predictions import read_predictions
from .envs import _seconds
from .output import emit, output_option, record_table
from .runs import settings_for, store_option

FIELDS = ("time", "request_id", "release_id", "route", "status", "latency_ms")


@click.command("predictions")
@click.option("--env", "env", metavar="NAME", help="Environment (default: staging).")
@click.option("--since", metavar="DURATION", help="Only records of the last DURATION (e.g. 90s, 10m, 1h).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most N records.")
@store_option
@output_option
def predictions_cmd(env, since, limit, store, output):
    """Show the predictions an environment's server logged (its payload_log setting, file or S3 sink),
    newest first. --output json prints each whole record (input, output or error) and the ledger's
    release for each release id the records carry."""
    start = time.time() - _seconds(since) if since else None
    result = read_predictions(settings_for(store), env, since=start, limit=limit)
    text = record_table(result.records, FIELDS) if result.records else f"{result.environment}: no predictions logged"
    emit(output, result.to_json(), text)
