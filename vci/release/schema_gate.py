"""A promotion's schema check: what changes in the input schema, and an environment that refuses a change.

The input schema (vci.schema) is the endpoint's contract with its callers: a promotion that changes it
says so (``schema_changes`` in its result, and its reason), and a destination with
``allow_schema_change: false`` refuses it before anything is copied or deployed (ConflictError).
A destination that runs nothing yet has no contract to break. The schemas are read from the two runs'
manifests in the store (the release's run ids); a run that cannot be read there is not guessed at.
"""

from __future__ import annotations

from ..deploy.target import Status
from ..errors import ConflictError, NotFoundError
from ..runs import get_run
from ..schema import changes


def schemas_of(settings, run_id: str | None) -> dict | None:
    """The run's schemas from the store; None for a run logged before vci recorded them."""
    if not run_id:
        raise NotFoundError("the release names no run, so its input schema is unknown")
    return get_run(run_id, settings=settings).manifest.get("schemas")


def schema_changes(settings, live: Status, current: Status) -> list[str]:
    """How the input schema changes when ``live``'s run replaces ``current``'s ([] when nothing runs there)."""
    if not current.deployed or current.run_id == live.run_id:
        return []
    return changes(schemas_of(settings, current.run_id), schemas_of(settings, live.run_id))


def check_schema_change(settings, destination, live: Status, current: Status) -> list[str]:
    """The changes, refused (ConflictError, nothing changed) where ``destination`` does not allow any."""
    found = schema_changes(settings, live, current)
    if found and not destination.allow_schema_change:
        raise ConflictError(
            f"promoting {live.run_id} to {destination.name!r} changes its input schema ({'; '.join(found)}), "
            f"and {destination.name!r} has allow_schema_change: false: nothing was promoted",
            hint="keep the input schema (run.log_schema), or set allow_schema_change: true for this promotion's "
            "environment once its callers are ready",
        )
    return found
