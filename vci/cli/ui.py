"""``vci ui``: serve the web app over the configured store and environments until interrupted."""

from __future__ import annotations

import click

from ..ui.app import create_app, serve
from ..ui.guard import Guard, app_token, loopback_hosts
from .params import PORT
from .runs import settings_for, store_option


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every one).")
@click.option("--port", type=PORT, default=8765, show_default=True, help="Port to listen on (0: a free one).")
@click.option(
    "--actions",
    is_flag=True,
    help="Allow promote, rollback, abort and predictions, for whoever holds the token (VCI_UI_TOKEN, else one "
    "printed once at start).",
)
@store_option
def ui_cmd(host, port, actions, store):
    """Serve the web app: environments, release timelines and diffs, runs, live charts; with --actions,
    promote, roll back, abort a canary and try a non-production model.

    Read-only by default. Pages call the same library functions as the CLI; actions go through the
    same gates and ledger, refused without the token, with a wrong CSRF token or from another origin.
    """
    settings = settings_for(store)
    token, generated = app_token() if actions else ("", False)
    guard = Guard(token=token, actions=actions)
    app = create_app(settings, guard)
    server = serve(app, host, port)
    app.config["catalog"].warm()
    guard.hosts = loopback_hosts(host, server.port)
    shown = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{server.port}/"
    click.echo(f"vci ui: serving {shown} ({'actions on' if actions else 'read-only'}); Ctrl-C stops it", err=True)
    if generated:  # printed once, as Jupyter does; VCI_UI_TOKEN keeps it out of the terminal
        click.echo(f"vci ui: sign in to act: {shown}login?token={token}", err=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
