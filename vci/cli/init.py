"""``vci init``: start a project that ``vci log`` and ``vci deploy`` work on at once."""

from __future__ import annotations

import click

from ..scaffold import init_project
from .output import emit, output_option


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--project", help="Project name (default: the directory's name).")
@click.option("--force", is_flag=True, help="Overwrite files of the same names.")
@click.option("--dry-run", is_flag=True, help="List the files it would write; write nothing.")
@output_option
def init_cmd(directory, project, force, dry_run, output):
    """Write a new project into DIRECTORY (default: here): model.py, train.py, vci.yaml (local staging
    and production), examples.json, requirements.txt, a GitHub Actions workflow and a Jenkinsfile.
    Existing files are never overwritten without --force.

    \b
    vci init my-model && cd my-model && python train.py
    vci log --model model.py:Model --artifact weights=out/weights.json --examples examples.json
    """
    result = init_project(directory, project, force=force, dry_run=dry_run)
    verb = "would write" if dry_run else "wrote"
    lines = [f"{verb} project {result.project!r} in {result.directory}:"] + [f"  {f}" for f in result.files]
    if not dry_run:
        lines.append(f"next: cd {result.directory} && python train.py, then the commands in README.md")
    emit(output, result.to_json(), "\n".join(lines))
