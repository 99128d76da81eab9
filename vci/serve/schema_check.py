"""Request validation: the run's input schema, compiled once, checked before the model sees a request (422).

``input_check(manifest)`` gives ``ModelService.input_check``: ``(data, batch) -> problem or None``. A
/batch-predict body is checked item by item (``$[2][0][3]: ...`` names the item first). A run without a
``schemas`` entry (logged before vci had them) or without an input schema is not checked. ``--no-validate``
(``VCI_VALIDATE=0``, an environment's ``validate: false``) turns checking off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..validator import Validator, schema_problem
from . import logs

InputCheck = Callable[[Any, bool], "str | None"]


def input_check(manifest: dict, validate: bool = True) -> InputCheck | None:
    """The check for the run's input schema, or None (nothing to check, or checking turned off); logged."""
    schemas = manifest.get("schemas") or {}
    schema = schemas.get("input")
    source = (schemas.get("from") or {}).get("input")
    if not validate or schema is None:
        reason = "turned off (--no-validate / VCI_VALIDATE=0)" if not validate else "the run has no input schema"
        logs.event("input_validation", enabled=False, reason=reason)
        return None
    problem = schema_problem(schema)  # a manifest written by hand or by a newer vci: serve, unchecked, and say so
    if problem is not None:
        logs.event("input_validation", "error", enabled=False, reason=f"the input schema cannot be applied: {problem}")
        return None
    validator = Validator(schema)
    logs.event("input_validation", enabled=True, schema_from=source)

    def check(data, batch: bool) -> str | None:
        if not batch:
            return validator.problem(data)
        for index, item in enumerate(data):
            problem = validator.problem(item)
            if problem is not None:
                return f"$[{index}]{problem[1:]}"
        return None

    return check
