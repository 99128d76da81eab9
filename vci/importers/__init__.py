"""Models saved by other tools (MLflow, BentoML) become vci runs: ``vci import mlflow|bentoml``.

Each importer reads what the other tool wrote (never running it: neither MLflow nor BentoML need be
installed here) into a ``Plan``: the vci Model class that serves it (from vci.frameworks, so the image's
runtime layer holds it), the files to log by key, the requirements, the schemas and the examples, and
two lists for people: what was mapped and what was not. What it cannot serve faithfully (a flavor
without a Python loader vci knows, a custom runtime) is refused with an ImportRefused naming it, never
guessed. ``log_plan`` then logs and commits the plan as any run is logged (vci.runs).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings
from ..errors import ModelValidationError
from ..frameworks.base import META_KEY
from ..runs import init


class ImportRefused(ModelValidationError):
    """A model another tool saved that vci cannot serve as it is (exit 4, as a model vci cannot load)."""


def read_yaml(path: Path):
    """The YAML document the other tool wrote at ``path`` (ImportRefused if it cannot be read)."""
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ImportRefused(f"cannot read {path}: {exc}") from None


@dataclass
class Plan:
    """What an imported model becomes: ``model_class`` over ``artifacts`` ({key: path}; ``meta`` is
    written as the ``model.json`` artifact), pinned ``requirements``, schemas and example inputs."""

    tool: str
    source: str
    flavor: str
    model_class: type
    artifacts: dict[str, Path]
    meta: dict
    requirements: list[str]
    imports: list[str]  # what the served model imports (its Model class's framework)
    input_schema: dict | None = None
    output_schema: dict | None = None
    examples: list | None = None
    mapped: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImportResult:
    """A committed import (``run_id`` None for a dry run) and what it mapped."""

    plan: Plan
    run_id: str | None
    version: str | None
    schemas: dict | None

    def to_json(self) -> dict:
        p = self.plan
        return {
            "tool": p.tool,
            "source": p.source,
            "flavor": p.flavor,
            "run_id": self.run_id,
            "version": self.version,
            "model_class": f"{p.model_class.__module__}.{p.model_class.__qualname__}",
            "artifacts": sorted([*p.artifacts, META_KEY]),
            "requirements": p.requirements,
            "imports": p.imports,
            "schemas": self.schemas,
            "mapped": p.mapped,
            "unmapped": p.unmapped,
            "dry_run": self.run_id is None,
        }


def log_plan(settings: Settings, plan: Plan, *, project: str | None = None, dry_run: bool = False) -> ImportResult:
    """Log ``plan`` as a new run and commit it; a dry run logs nothing and returns the plan."""
    if dry_run:
        return ImportResult(plan, None, None, None)
    run = init(project, settings=settings)
    with tempfile.TemporaryDirectory(prefix="vci-import-") as tmp:
        meta_path = Path(tmp) / META_KEY
        meta_path.write_text(json.dumps(plan.meta, indent=2, sort_keys=True) + "\n")
        for key, path in {**plan.artifacts, META_KEY: meta_path}.items():
            run.log_artifact(key, path)
    run.log_model(plan.model_class, artifacts=[*plan.artifacts, META_KEY])
    run.log_requirements(plan.requirements)
    if plan.input_schema is not None or plan.output_schema is not None:
        run.log_schema(input=plan.input_schema, output=plan.output_schema)
    if plan.examples:
        run.log_examples(plan.examples)
    version = run.commit()
    return ImportResult(plan, run.id, version, run.manifest.get("schemas"))
