"""``vci import mlflow|bentoml``: a model another tool saved becomes a run (vci.importers)."""

from __future__ import annotations

import click

from ..importers import ImportResult, log_plan
from ..importers import bentoml as bentoml_import
from ..importers import mlflow as mlflow_import
from .output import emit, output_option
from .runs import settings_for, store_option

project_option = click.option("--project", help="Project of the new run (default: vci.yaml or VCI_PROJECT).")
dry_run_option = click.option("--dry-run", is_flag=True, help="Print what would be mapped; log nothing.")


@click.group("import")
def import_group():
    """Import a model saved by MLflow or BentoML as a run: what was mapped and what was not is printed,
    and what vci cannot serve as saved is refused (exit 4), never guessed."""


@import_group.command("mlflow")
@click.argument("source", metavar="PATH|models:/NAME/VERSION|runs:/RUN_ID/PATH")
@click.option(
    "--tracking-uri",
    envvar="MLFLOW_TRACKING_URI",
    metavar="URI",
    help="MLflow's tracking store for models:/ and runs:/ (sqlite:///PATH; default: MLFLOW_TRACKING_URI, "
    "else sqlite:///mlflow.db).",
)
@project_option
@dry_run_option
@store_option
@output_option
def mlflow_cmd(source, tracking_uri, project, dry_run, store, output):
    """Import an MLflow model (its MLmodel directory, a registered version or a run's model).

    \b
    vci import mlflow mlruns/1/models/m-0c3e.../artifacts
    vci import mlflow models:/iris/3 --tracking-uri sqlite:///mlflow.db
    """
    plan = mlflow_import.plan(source, tracking_uri)
    _report(output, log_plan(settings_for(store, project), plan, project=project, dry_run=dry_run))


@import_group.command("bentoml")
@click.argument("path_or_tag", metavar="PATH|NAME[:VERSION]")
@click.option(
    "--bentoml-home",
    envvar="BENTOML_HOME",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="BentoML's home, whose models/ is the model store (default: BENTOML_HOME, else ~/bentoml).",
)
@project_option
@dry_run_option
@store_option
@output_option
def bentoml_cmd(path_or_tag, bentoml_home, project, dry_run, store, output):
    """Import a model saved in BentoML's model store (by tag) or its directory (model.yaml beside its files).

    \b
    vci import bentoml iris_clf:latest
    """
    plan = bentoml_import.plan(path_or_tag, bentoml_home)
    _report(output, log_plan(settings_for(store, project), plan, project=project, dry_run=dry_run))


def _report(output: str, result: ImportResult) -> None:
    doc = result.to_json()
    lines = [f"{doc['tool']} {doc['flavor']} from {doc['source']}", f"  served by {doc['model_class']}"]
    lines.append(f"  the served model imports: {', '.join(doc['imports'])}")
    lines += [f"  mapped: {line}" for line in doc["mapped"]]
    lines += [f"  not mapped: {line}" for line in doc["unmapped"]]
    lines.append("dry run: nothing logged" if result.run_id is None else f"{result.run_id}\t{result.version}")
    emit(output, doc, "\n".join(lines))
