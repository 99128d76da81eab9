"""`vci init`: a new project's files (model, training, settings, examples, CI), ready for log and deploy."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConflictError, UsageError
from ..files import write_replacing

TEMPLATES = Path(__file__).parent / "templates"
FILES = {  # written as -> template (templates of dot files and CI paths are stored under plain names)
    "model.py": "model.py",
    "train.py": "train.py",
    "vci.yaml": "vci.yaml",
    "examples.json": "examples.json",
    "requirements.txt": "requirements.txt",
    "README.md": "README.md",
    ".gitignore": "gitignore",
    ".github/workflows/vci.yml": "github-workflow.yml",
    "Jenkinsfile": "Jenkinsfile",
}
SUBSTITUTED = {"vci.yaml", "README.md"}  # $project in them is the project's name


@dataclass(frozen=True)
class Scaffold:
    """What ``init`` wrote (or, for a dry run, would write) and where."""

    directory: str
    project: str
    files: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_json(self) -> dict:
        return {"directory": self.directory, "project": self.project, "files": self.files, "dry_run": self.dry_run}


def project_name(directory: Path) -> str:
    """A project name from a directory's name: lower case, letters, digits and dashes."""
    name = re.sub(r"[^a-z0-9]+", "-", directory.resolve().name.lower()).strip("-")
    return name or "model"


def init_project(
    directory: str | Path, project: str | None = None, *, force: bool = False, dry_run: bool = False
) -> Scaffold:
    """Write the project's files into ``directory`` (made if missing). Files that exist are refused, all of
    them named, before anything is written, unless ``force``; a dry run writes nothing."""
    where = Path(directory)
    if where.exists() and not where.is_dir():
        raise UsageError(f"{where} is a file, not a directory", hint="give a new or existing directory")
    name = project or project_name(where)
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,62}", name):
        raise UsageError(f"project name {name!r} is not valid", hint="lower-case letters, digits, '.', '_', '-'")
    present = sorted(path for path in FILES if (where / path).exists())
    if present and not force:
        raise ConflictError(
            f"{where} already has {', '.join(present)}: nothing was written",
            hint="choose an empty directory, or pass --force to overwrite them",
        )
    if not dry_run:
        for path, template in FILES.items():
            text = (TEMPLATES / template).read_text()
            if path in SUBSTITUTED:
                text = string.Template(text).safe_substitute(project=name)
            (where / path).parent.mkdir(parents=True, exist_ok=True)
            write_replacing(where / path, text)
    return Scaffold(str(where), name, list(FILES), dry_run)
