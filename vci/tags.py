"""Names for runs: tags a person moves (``champion``) and ``latest``, usable wherever a run id is.

A name is ``NAME`` (in the configured project) or ``PROJECT:NAME``; ``latest`` is the project's committed
run with the newest id (ids carry their run's start time to the second; two runs started in one second
are ordered by their random part). Tags live in the store at ``tags/<project>/<name>.json`` (who moved
it, when, from what), so every machine and CI job sharing the store sees them; moving one is a write,
never a rewrite of a run.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .catalog import newest_documents
from .errors import NotFoundError, StoreError, UsageError
from .ledger import now_iso, who
from .store.base import Store

TAG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,62}$")
LATEST = "latest"


@dataclass(frozen=True)
class Tag:
    """A name of a run in a project, and who last moved it."""

    project: str
    name: str
    run_id: str
    who: str = ""
    when: str = ""
    previous: str | None = None  # the run it named before this move

    def to_json(self) -> dict:
        return asdict(self)


def split_name(text: str, project: str | None) -> tuple[str, str]:
    """``PROJECT:NAME`` or ``NAME`` (in ``project``) -> (project, name); UsageError for anything else."""
    owner, sep, name = text.rpartition(":")
    owner = owner if sep else (project or "")
    if not owner or not TAG_NAME.match(name):
        raise UsageError(
            f"{text!r} is not a run id, nor a run name",
            hint="a run id (see `vci runs list`), NAME of a tag in the project (set project:), or PROJECT:NAME",
        )
    return owner, name


def tag_key(project: str, name: str) -> str:
    return f"tags/{project}/{name}.json"


def read_tag(store: Store, project: str, name: str) -> Tag | None:
    try:
        doc = store.get_json(tag_key(project, name))
    except NotFoundError:
        return None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in ("project", "name", "run_id")):
        raise StoreError(
            f"the tag {project}:{name} in {store.url} is malformed", hint=f"set it again: vci runs tag RUN {name}"
        )
    previous = doc.get("previous")
    return Tag(
        doc["project"],
        doc["name"],
        doc["run_id"],
        str(doc.get("who", "")),
        str(doc.get("when", "")),
        previous if isinstance(previous, str) else None,
    )


def write_tag(store: Store, project: str, name: str, run_id: str, *, dry_run: bool = False) -> Tag:
    """Point ``project:name`` at ``run_id`` (the run's own project, checked by the caller); with
    ``dry_run``, only say what the tag would be."""
    if not TAG_NAME.match(name) or name == LATEST:
        raise UsageError(
            f"{name!r} cannot be a tag name",
            hint=f"letters, digits, '.', '_', '-', starting with a letter; {LATEST!r} always names the newest run",
        )
    before = read_tag(store, project, name)
    tag = Tag(project, name, run_id, who(), now_iso(), before.run_id if before else None)
    if not dry_run:
        store.put_json(tag_key(project, name), tag.to_json())
    return tag


def list_tags(store: Store, project: str) -> list[Tag]:
    names = [k.rsplit("/", 1)[1][:-5] for k in store.list_keys(f"tags/{project}/") if k.endswith(".json")]
    return [tag for tag in (read_tag(store, project, n) for n in sorted(names)) if tag is not None]


def run_id_for(store: Store, text: str, project: str | None) -> str:
    """The run id a name stands for (NotFoundError naming what was looked for)."""
    owner, name = split_name(text, project)
    if name == LATEST:
        newest = newest_documents(store, "runs/", 1, lambda m: m.get("project") == owner)
        if not newest:
            raise NotFoundError(f"project {owner!r} has no committed run in {store.url}", hint="log one: vci log ...")
        return newest[0]["id"]
    tag = read_tag(store, owner, name)
    if tag is None:
        raise NotFoundError(
            f"no run is named {owner}:{name} in {store.url}",
            hint=f"`vci runs tags --project {owner}` lists the names; `vci runs tag RUN {name}` sets one",
        )
    return tag.run_id
