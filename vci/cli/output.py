"""How commands print: results to stdout (text or one JSON object), progress and errors to stderr."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

import click

from ..ci import github as gha
from ..ci import gitlab
from ..ci.github import error_annotation
from ..redact import redact

# Set while parsing so that the error handler in main() knows how the failing command wanted output.
STATE = {"output": "text", "debug": False}


def _remember_output(ctx, param, value):
    STATE["output"] = value
    return value


def output_option(f):
    """``--output text|json`` on a command."""
    return click.option(
        "--output",
        "-o",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        expose_value=True,
        callback=_remember_output,
        is_eager=True,
        help="Print a human summary or one JSON object (for CI).",
    )(f)


def emit(output: str, result: dict, text: str | None = None) -> None:
    """Print ``result`` as JSON, or ``text`` (default: key: value lines) for people; in GitHub Actions
    also mask its secrets first and write it as step outputs and a job summary; in GitLab CI also write
    its digest, release id, endpoint, ... to the job's dotenv report (``VCI_DOTENV``)."""
    printed = (
        json.dumps(result, indent=None, sort_keys=True, default=str)
        if output == "json"
        else text
        if text is not None
        else "\n".join(f"{k}: {v}" for k, v in result.items())
    )
    if gitlab.in_gitlab_ci():
        gitlab.write_dotenv(result)
    if os.environ.get("GITHUB_ACTIONS") != "true":
        click.echo(printed)
        return
    ctx = click.get_current_context(silent=True)
    command = ctx.command_path.removeprefix("vci ") if ctx else "result"
    gha.mask_secrets(result)
    with gha.group(f"vci {command}: result"):
        click.echo(printed)
    gha.publish(command, result)


def report_error(message: str, code: str) -> None:
    """Print an error (JSON on stderr under --output json); in GitHub Actions also annotate the run.
    Whatever raised it, no credential vci can recognise is repeated."""
    message = redact(message)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        error_annotation(message, title=f"vci: {code}")
    if STATE["output"] == "json":
        print(json.dumps({"error": message, "code": code}), file=sys.stderr)
    else:
        print(f"vci: error: {message}", file=sys.stderr)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def record_table(records: list[dict], fields: Sequence[str]) -> str:
    """One row per record, one column per field, headed by the field's name upper-cased without ``_id``
    or ``_url`` (``release_id`` -> RELEASE); digests cut to 19 characters, missing values ``-``."""
    header = [f.removesuffix("_id").removesuffix("_url").upper() for f in fields]
    return table([[_cell(record.get(f)) for f in fields] for record in records], header)


def _cell(value) -> str:
    text = "-" if value in (None, "") else str(value)
    return text[:19] if text.startswith("sha256:") else text


def comparison_text(shadow: dict) -> str:
    """A shadow comparison in one line: counts, rate, the latency of both sides (``vci status``, the promote
    summary)."""
    rate = shadow.get("disagreement_rate")
    counts = (
        f"{shadow.get('compared', 0)} compared, {shadow.get('disagreed', 0)} disagreed"
        f" ({'-' if rate is None else f'{rate:.1%}'}), {shadow.get('errors', 0)} failed to reach the shadow,"
        f" {shadow.get('dropped', 0)} dropped"
    )
    sides = []
    for side in ("live", "shadow"):
        mean, p90 = shadow.get(f"{side}_latency_ms"), shadow.get(f"{side}_p90_ms")
        sides.append(f"{side} {'-' if mean is None else f'{mean:g} ms'}" + (f" (p90 {p90:g} ms)" if p90 else ""))
    release = f" of release {shadow['release_id']}" if shadow.get("release_id") else ""
    return f"shadow{release}: {counts}; latency {', '.join(sides)}"
