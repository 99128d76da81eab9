"""``vci log`` and ``vci runs``: record a run from the command line, list and show runs."""

from __future__ import annotations

import click

from ..config import load_settings
from ..errors import UsageError
from ..model import load_model_file
from ..progress import format_bytes
from ..requirements import lock_lines, read_requirements
from ..runs import get_run, init, list_runs, run_tags, tag_run
from ..schema import describe
from ..store import open_store
from .output import emit, output_option, record_table, table
from .params import AT_LEAST_ONE, FILE_IN

store_option = click.option(
    "--store",
    metavar="URL",
    help="Artifact store: a directory or s3://bucket/prefix (default: vci.yaml, VCI_STORE, ./.vci).",
)


def settings_for(store: str | None = None, project: str | None = None):
    return load_settings({"store": store, "project": project})


def _parse_artifacts(values: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, path = value.partition("=")
        if not sep or not key or not path:
            raise UsageError(f"--artifact {value!r} must be KEY=PATH", hint="e.g. --artifact weights=out/model.joblib")
        pairs.append((key, path))
    return pairs


@click.command("log")
@click.option("--model", "model_spec", metavar="FILE.py:Class", help="The model class to log.")
@click.option(
    "--artifact",
    "artifacts",
    multiple=True,
    metavar="KEY=PATH",
    help="A file or directory to log (repeatable); the model receives {KEY: local path}.",
)
@click.option(
    "--requirements",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="requirements.txt; pinned to the versions installed here.",
)
@click.option(
    "--examples",
    "examples_file",
    type=FILE_IN,
    metavar="FILE",
    help='JSON {"inputs": [...], "expected_outputs": [...]} used by smoke tests.',
)
@click.option(
    "--env-var",
    "env_vars",
    multiple=True,
    metavar="NAME",
    help="Record this environment variable's current value for serving (repeatable).",
)
@click.option("--project", help="Project name (default: vci.yaml or VCI_PROJECT).")
@click.option("--dry-run", is_flag=True, help="Check everything and print what would be uploaded; write nothing.")
@store_option
@output_option
def log_cmd(model_spec, artifacts, requirements, examples_file, env_vars, project, dry_run, store, output):
    """Log a model, its artifacts and requirements as a new run, and commit it.

    \b
    vci log --model examples/iris/model.py:Model \\
            --artifact weights=out/model.joblib --requirements requirements.txt
    """
    pairs = _parse_artifacts(artifacts)  # what was given is checked first, then what is missing
    wanted = read_requirements(requirements) if requirements else None
    if not model_spec:
        raise UsageError(
            "vci log needs the model class: --model FILE.py:Class",
            hint="e.g. vci log --model model.py:Model --artifact weights=out/model.joblib",
        )
    run = init(project, settings=settings_for(store, project), dry_run=dry_run)
    model_class = load_model_file(model_spec)
    sent, pinned = {}, []
    for key, path in pairs:
        sent[key] = run.log_artifact(key, path)
    model = run.log_model(model_class, artifacts=[k for k, _ in pairs])
    if wanted is not None:
        pinned = run.log_requirements(wanted)
    if env_vars:
        run.log_environment(list(env_vars))
    if examples_file:
        _log_examples(run, examples_file)
    if dry_run:
        emit(output, *_plan(run, sent, model, pinned))
        return
    version = run.commit()
    result = {
        "run_id": run.id,
        "version": version,
        "project": run.project,
        "store": run.store.url,
        "artifacts": {k: {"digest": r["digest"], "size": r["size"]} for k, r in sent.items()},
        "schemas": run.manifest.get("schemas"),
    }
    for line in schema_lines(run.manifest.get("schemas"))[1:]:  # what vci inferred, on stderr
        click.echo(f"vci: {line.strip()}", err=True)
    emit(output, result, f"{run.id}\t{version}")


def _plan(run, artifacts: dict, model: dict | None, requirements: list[str]) -> tuple[dict, str]:
    """What a dry run of ``vci log`` found: each artifact and the model class, whether a real run would
    upload it (a blob the store already has is never sent again), and the bytes it would send."""
    planned = run.store.planned

    def blob(record: dict) -> dict:
        return {"digest": record["digest"], "size": record["size"], "upload": record["digest"] in planned}

    result = {
        "dry_run": True,
        "project": run.project,
        "store": run.store.url,
        "artifacts": {key: blob(record) for key, record in artifacts.items()},
        "model": {"class": model["class"], **blob(model)} if model else None,
        "requirements": requirements,
        "upload_bytes": sum(planned.values()),
    }
    rows = [*result["artifacts"].items(), *([(f"model {model['class']}", result["model"])] if model else [])]
    head = f"would log a run of {run.project or '(no project)'} to {run.store.url}"
    lines = [f"{head}, uploading {format_bytes(result['upload_bytes'])}:"]
    lines += [
        f"  {name}: {format_bytes(b['size'])} {b['digest'][:19]} {'(new)' if b['upload'] else '(in the store)'}"
        for name, b in rows
    ]
    return result, "\n".join(lines)


def _log_examples(run, path: str) -> None:
    import json

    try:
        doc = json.loads(open(path).read())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read examples from {path}: {exc}") from exc
    if not isinstance(doc, dict) or "inputs" not in doc:
        raise UsageError(f'{path} must hold {{"inputs": [...], "expected_outputs": [...]}}')
    run.log_examples(doc["inputs"], doc.get("expected_outputs"))


@click.group("runs")
def runs_group():
    """List and show logged runs."""


@runs_group.command("list")
@click.option("--project", help="Only runs of this project.")
@click.option(
    "--limit", type=AT_LEAST_ONE, default=20, show_default=True, help="Show at most this many (newest first)."
)
@store_option
@output_option
def runs_list(project, limit, store, output):
    """List committed runs, newest first (only the manifests the page shows are read; once read, a run's
    manifest is kept in the local cache, since a committed run never changes)."""
    settings = settings_for(store)
    runs = list_runs(project=project, settings=settings, limit=limit, cached=True)
    summaries = [r.summary() for r in runs]
    rows = [
        [s["id"], s["project"] or "-", s["model"] or "-", s["version"][:19], format_bytes(s["size"])] for s in summaries
    ]
    where = open_store(settings.store).url
    text = table(rows, ["RUN", "PROJECT", "MODEL", "VERSION", "SIZE"]) if rows else "no runs"
    emit(output, {"store": where, "runs": summaries}, f"{text}\n(store: {where})")


def schema_lines(schemas: dict | None) -> list[str]:
    """The input and output schemas in words, and where each came from (the JSON has them whole)."""
    if schemas is None:
        return ["schemas:      none (logged before vci recorded them: requests are not checked)"]
    lines = ["schemas (whole: --output json):"]
    for side in ("input", "output"):
        source = schemas.get("from", {}).get(side) or "nothing"
        lines.append(f"  {side}: {describe(schemas.get(side))}  (from {source})")
    return lines


@runs_group.command("show")
@click.argument("run_id")
@store_option
@output_option
def runs_show(run_id, store, output):
    """Show one run: its manifest, version, artifacts, requirements and their lock (the whole closure),
    and its schemas (the input and output JSON Schemas the server checks requests against)."""
    run = get_run(run_id, settings=settings_for(store))
    m = run.manifest
    lines = [
        f"run:          {run.id}",
        f"project:      {run.project}",
        f"version:      {run.version}",
        f"created:      {m['created']}",
        f"model:        {(m.get('model') or {}).get('class', '-')}",
        f"python:       {m['environment']['python']}",
        *schema_lines(m.get("schemas")),
        "artifacts:",
    ]
    lines += [
        f"  {k}: {r['kind']} {r['filename']} {format_bytes(r['size'])} {r['digest'][:19]}"
        for k, r in sorted(m["artifacts"].items())
    ]
    lines += ["requirements:"] + [f"  {r}" for r in m["requirements"]]
    if "lock" in m:
        lines += [f"lock ({len(m['lock'])} distributions, the dependency layer exactly):"]
        lines += [f"  {line}" for line in lock_lines(m["lock"])]
    else:
        lines += ["lock:         none (logged before vci locked dependencies: resolved when the image is built)"]
    emit(output, {"version": run.version, "manifest": m}, "\n".join(lines))


@runs_group.command("tag")
@click.argument("run_id", metavar="RUN")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Say what the name would point at; write nothing.")
@store_option
@output_option
def runs_tag(run_id, name, dry_run, store, output):
    """Name RUN (an id, or a name such as latest) NAME in its project; a name that exists moves.
    Wherever a run id is taken, NAME or PROJECT:NAME works too (`vci deploy champion`)."""
    tag = tag_run(settings_for(store), run_id, name, dry_run=dry_run)
    moved = f" (was {tag.previous})" if tag.previous and tag.previous != tag.run_id else ""
    verb = "would point" if dry_run else "->"
    emit(output, {**tag.to_json(), "dry_run": dry_run}, f"{tag.project}:{tag.name} {verb} {tag.run_id}{moved}")


@runs_group.command("tags")
@click.option("--project", help="Whose names (default: the configured project).")
@store_option
@output_option
def runs_tags(project, store, output):
    """List a project's run names: which run each names, who moved it last and when."""
    tags = [t.to_json() for t in run_tags(settings_for(store), project)]
    emit(output, {"tags": tags}, record_table(tags, ("name", "run_id", "who", "when")) if tags else "no names yet")
