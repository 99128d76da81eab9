"""``vci holds list|add|lift``: digests that automatic promotion must not bring into an environment."""

from __future__ import annotations

import click

from ..release.holds import hold, list_holds, unhold
from .output import emit, output_option, record_table
from .runs import settings_for, store_option

env_option = click.option("--env", "env", metavar="NAME", help="Environment (default: staging).")
digest_option = click.option("--digest", required=True, metavar="sha256:HEX", help="The digest held.")
HOLD_FIELDS = ("hold_id", "digest", "reason", "who", "when")


@click.group("holds")
def holds_group():
    """Digests held in an environment: `vci promote --auto` does not promote them there.

    `vci rollback` holds the digest it rolls away from; a manual `vci promote --digest` is not held back.
    """


@holds_group.command("list")
@env_option
@store_option
@output_option
def list_cmd(env, store, output):
    """List an environment's active holds, newest first."""
    result = list_holds(settings_for(store), env)
    rows = result["holds"]
    emit(output, result, record_table(rows, HOLD_FIELDS) if rows else f"{result['environment']}: nothing is held")


@holds_group.command("add")
@env_option
@digest_option
@click.option("--reason", metavar="TEXT", help="Why (recorded with the hold).")
@store_option
@output_option
def add_cmd(env, digest, reason, store, output):
    """Hold a digest in an environment by hand."""
    emit(output, hold(settings_for(store), env, digest, reason))


@holds_group.command("lift")
@env_option
@digest_option
@store_option
@output_option
def lift_cmd(env, digest, store, output):
    """Lift the holds of a digest in an environment (automatic promotion may bring it there again)."""
    result = unhold(settings_for(store), env, digest)
    emit(output, result, f"lifted {len(result['lifted'])} hold(s) of {digest} in {result['environment']}")
