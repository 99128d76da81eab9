"""``vci envs`` and ``vci logs``: the configured environments, and what their servers write."""

from __future__ import annotations

import json
import time

import click

from ..config import parse_seconds
from ..deploy import logs
from ..errors import UsageError
from ..logview import parse_line, render_line
from ..redact import mask_url
from .output import emit, output_option, record_table
from .runs import settings_for, store_option

ENV_FIELDS = ("environment", "target", "default", "where", "strategy", "requires_approval")


@click.command("envs")
@store_option
@output_option
def envs_cmd(store, output):
    """List the configured environments (from vci.yaml; nothing is asked of a server): target, where it
    deploys, release strategy and whether a promotion needs an approval. `vci status` shows what runs."""
    settings = settings_for(store)
    default = settings.default_environment
    rows = [_describe(settings.environment(name), name == default) for name in sorted(settings.environments)]
    emit(output, {"environments": rows}, record_table(rows, ENV_FIELDS))


def _describe(env, default: bool) -> dict:
    where = "this machine" if env.is_local else f"{env.context or 'current context'}/{env.namespace or 'default'}"
    if env.gitops:
        where = f"{mask_url(env.gitops['repo'])} {env.gitops.get('branch', 'main')}:{env.gitops.get('path', '.')}"
    if env.is_group:
        where = "waves: " + ", ".join(env.targets or [])
    return {
        "environment": env.name,
        "target": "group" if env.is_group else env.target,
        "default": default,
        "where": where,
        "repository": env.repository,
        "strategy": env.strategy or "direct",
        "requires_approval": bool(env.requires_approval),
    }


@click.command("logs")
@click.option("--env", "env", metavar="NAME", help="Environment (default: staging).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the server stops (Ctrl-C ends).")
@click.option("--since", metavar="DURATION", help="Only lines of the last DURATION (e.g. 90s, 10m, 2h).")
@click.option("--tail", type=click.IntRange(min=0), metavar="N", help="Only the last N lines (before following).")
@store_option
@output_option
def logs_cmd(env, follow, since, tail, store, output):
    """Show the model server's log: a local deployment's server, or every pod of a Kubernetes one
    (each line prefixed by its pod). JSON lines become columns, tracebacks are shown as tracebacks;
    --output json prints one JSON object per line instead: {source, record} or {source, text}."""
    start = time.time() - since_seconds(since) if since else None
    for line in logs(settings_for(store), env, since=start, tail=tail, follow=follow):
        if output == "json":
            record = parse_line(line.text)
            shown = {"source": line.source, **({"record": record} if record else {"text": line.text})}
            click.echo(json.dumps(shown, sort_keys=True))
        else:
            click.echo(render_line(line.text, line.source))


def since_seconds(since: str) -> float:
    """``--since``: a positive duration (10m, 1h) in seconds."""
    seconds = parse_seconds(since, "--since")
    if seconds <= 0:
        raise UsageError(f"--since must be a positive duration, not {since!r}", hint="e.g. --since 10m")
    return seconds
