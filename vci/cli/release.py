"""``vci test``, ``promote``, ``rollback`` and ``history``: release what staging verified, and look back."""

from __future__ import annotations

import click

from ..envrules import STRATEGIES
from ..errors import DeployError
from ..release.auto import promote_auto
from ..release.rollback import HISTORY_FIELDS, history, rollback
from ..release.smoke import smoke_test
from ..release.waves import release
from .output import comparison_text, emit, output_option, record_table
from .params import AT_LEAST_ONE, FILE_IN, SECONDS
from .runs import settings_for, store_option

env_option = click.option("--env", "env", metavar="NAME", help="Environment (default: staging).")


@click.command("test")
@env_option
@click.option(
    "--examples",
    "examples_file",
    type=FILE_IN,
    metavar="FILE",
    help='JSON examples instead of the run\'s logged ones: {"inputs": [...], "expected_outputs": [...]}.',
)
@store_option
@output_option
def test_cmd(env, examples_file, store, output):
    """Smoke-test a live deployment with its run's logged examples (exit 13 when one fails).

    Every answer must come back without an error; where expected outputs were logged, with the same
    shape and value.
    """

    result = smoke_test(settings_for(store), env, examples_file=examples_file)
    verdict = "passed" if result["passed"] else f"{len(result['failures'])} failed"
    lines = [f"{result['environment']} ({(result['digest'] or '')[:19]}): {result['checked']} examples, {verdict}"]
    lines += [
        f"  example {f['example']}: {f['problem']} {f.get('detail') or ''} "
        f"{'expected ' + repr(f['expected']) + ' got ' + repr(f['got']) if 'expected' in f else ''}".rstrip()
        for f in result["failures"]
    ]
    emit(output, result, "\n".join(lines))
    if not result["passed"]:
        raise DeployError(f"the smoke test of {result['environment']!r} failed", hint="see the failures above")


@click.command("promote")
@click.option("--from", "source", default="staging", show_default=True, metavar="ENV", help="Where the digest runs.")
@click.option("--to", "target", default="production", show_default=True, metavar="ENV", help="Where it goes.")
@click.option(
    "--digest",
    metavar="sha256:HEX",
    help="The digest that was tested and approved (what `vci deploy`/`vci test` printed); "
    "refused, changing nothing, when the source runs anything else. Required unless --auto.",
)
@click.option(
    "--auto",
    is_flag=True,
    help="Automatic promotion (a scheduled job; the target needs auto_promote: true): promote what the source "
    "runs once it has soaked (min_soak) unless it is held; soaking, held or unchanged exit 0.",
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    default=None,
    help="direct; canary in the target's steps; shadow: the candidate answers a copy of live traffic and "
    "is promoted only when its answers agree (the target's shadow: settings); or "
    "blue-green: the candidate's whole stack is tested beside production, then traffic switches at once "
    "and the previous stack is kept (blue_green: keep) for a rollback that is one switch back. Default: "
    "the target's strategy, else direct.",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the target is ready.")
@click.option(
    "--timeout",
    type=SECONDS,
    default=0,
    show_default=True,
    help="Overall bound in seconds on each wait (0: none; a rollout fails once it makes no progress for the "
    "target's progress_deadline).",
)
@click.option("--dry-run", is_flag=True, help="Print what would be promoted and touch nothing.")
@click.option("--approved-by", metavar="NAME", help="Who approved (required where the target requires approval).")
@click.option(
    "--examples",
    "examples_file",
    type=FILE_IN,
    metavar="FILE",
    help="Gate examples instead of the run's logged ones.",
)
@store_option
@output_option
def promote_cmd(
    source, target, digest, auto, strategy, wait, timeout, dry_run, approved_by, examples_file, store, output
):
    """Promote the digest live in one environment to another: gate, copy by digest, deploy, record.

    The gate is the source's smoke test (and an approval where the target requires one). A cluster
    image is copied into the target's repository by digest (blob mounts on one registry); a local
    environment moves the run. A canary runs beside the stable release in steps and rolls back when a
    rule (error rate, p90 or average latency) is broken. Promoting what the target runs changes nothing.
    A digest leaves a source with min_soak only once it has run there that long.
    """

    if not digest and not auto:
        raise click.UsageError("Missing option '--digest' (the tested digest), or pass --auto")
    result = (promote_auto if auto else release)(
        settings_for(store),
        source,
        target,
        digest=digest,
        strategy=strategy,
        wait=wait,
        dry_run=dry_run,
        approved_by=approved_by,
        examples_file=examples_file,
        timeout=timeout or None,
    )
    text = (
        f"{result['outcome']}: {result['from']} -> {result['to']} {result['digest']} "
        f"({result['strategy']}, release {result['release_id'] or '-'})\n{result.get('reason', '')}"
    )
    if result.get("shadow"):
        text = f"{text.rstrip()}\n{comparison_text(result['shadow'])}"
    emit(output, result, text.rstrip())
    if result["outcome"] == "rolled-back":
        what = {
            "waves": "the release was rolled back",
            "blue-green": "the candidate was removed",
            "shadow": "the candidate was not promoted",
        }.get(result["strategy"], "the canary was rolled back")
        raise DeployError(f"{what}: {result['reason']}")


@click.command("rollback")
@env_option
@click.option("--to", "to", metavar="RELEASE_ID", help="The release to return to (default: the previous one).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the environment is ready.")
@click.option("--dry-run", is_flag=True, help="Print what would be restored and touch nothing.")
@store_option
@output_option
def rollback_cmd(env, to, wait, dry_run, store, output):
    """Return an environment to an earlier release's digest (recorded as a new release)."""

    result = rollback(settings_for(store), env, to=to, wait=wait, dry_run=dry_run)
    emit(
        output,
        result,
        f"{result['outcome']}: {result['environment']} -> {result['digest']} "
        f"(release {result['restored']}; new release {result['release_id'] or '-'})",
    )


@click.command("history")
@env_option
@click.option("--limit", type=AT_LEAST_ONE, default=None, help="Only the newest N releases.")
@store_option
@output_option
def history_cmd(env, limit, store, output):
    """List an environment's releases, newest first: who, when, what digest, and how it ended."""

    result = history(settings_for(store), env, limit)
    rows = result["releases"]
    emit(output, result, record_table(rows, HISTORY_FIELDS) if rows else f"{result['environment']}: no releases yet")
