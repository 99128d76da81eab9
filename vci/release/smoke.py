"""``vci test``: send a run's logged examples (or a file of them) to a live endpoint and check the answers.

Each answer must come back without an error and, when expected outputs are stored, have the expected
shape and value (numbers within a relative tolerance). Without expected outputs, answers to inputs of
one shape must share one shape. The result is ``{environment, digest, passed, checked, failures}``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..client import DeployedModel
from ..config import Settings
from ..deploy import target_for
from ..deploy.target import Status
from ..errors import NotFoundError, RemoteError, UsageError
from ..runs import get_run

REL_TOLERANCE = 1e-6


def shape_of(value):
    """A JSON value's structure: lists become their lengths and element shapes, scalars their type."""
    if isinstance(value, list):
        return ["list", len(value), shape_of(value[0]) if value else None]
    if isinstance(value, dict):
        return {k: shape_of(v) for k, v in sorted(value.items())}
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def same_value(got, want) -> bool:
    """JSON equality, with numbers compared within REL_TOLERANCE."""
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(got, want, rel_tol=REL_TOLERANCE, abs_tol=1e-9)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(same_value(g, w) for g, w in zip(got, want, strict=True))
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(same_value(got[k], want[k]) for k in want)
    return got == want


def check_answers(inputs: list, answers: list, expected: list | None) -> list[dict]:
    """Failures (pure): ``answers[i]`` is ``{"output": ...}`` or ``{"error": ...}`` for ``inputs[i]``."""
    failures: list[dict] = []
    shapes: dict[str, tuple[int, object]] = {}
    for i, (given, answer) in enumerate(zip(inputs, answers, strict=True)):
        if "error" in answer:
            failures.append({"example": i, "problem": "error", "detail": answer["error"]})
            continue
        got = answer["output"]
        if expected is not None:
            want = expected[i]
            if shape_of(got) != shape_of(want):
                failures.append({"example": i, "problem": "shape", "expected": shape_of(want), "got": shape_of(got)})
            elif not same_value(got, want):
                failures.append({"example": i, "problem": "value", "expected": want, "got": got})
            continue
        key = json.dumps(shape_of(given), sort_keys=True)
        first = shapes.setdefault(key, (i, shape_of(got)))
        if first[1] != shape_of(got):
            failures.append(
                {
                    "example": i,
                    "problem": "shape",
                    "expected": first[1],
                    "got": shape_of(got),
                    "detail": f"example {first[0]} has the same input shape",
                }
            )
    return failures


def read_examples_file(path: str | Path) -> dict:
    """``{"inputs": [...], "expected_outputs": [...]|null}`` or a bare list of inputs, as JSON."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"cannot read examples from {path}: {exc}",
            hint='give JSON: {"inputs": [...], "expected_outputs": [...]} or a list of inputs',
        ) from exc
    if isinstance(data, list):
        data = {"inputs": data, "expected_outputs": None}
    inputs, expected = data.get("inputs") if isinstance(data, dict) else None, (data or {}).get("expected_outputs")
    if not isinstance(inputs, list) or not inputs or (expected is not None and len(expected) != len(inputs)):
        raise UsageError(f"{path} has no usable examples", hint="inputs: a non-empty list; expected_outputs as long")
    return {"inputs": inputs, "expected_outputs": expected}


def logged_examples(settings: Settings, run_id: str | None, env: str) -> dict:
    """The examples the run that ``env`` runs was logged with."""

    if not run_id:
        raise NotFoundError(
            f"cannot tell which run {env!r} runs, so it has no logged examples", hint="pass --examples FILE"
        )
    examples = get_run(run_id, settings=settings).manifest.get("examples")
    if not examples or not examples.get("inputs"):
        raise UsageError(
            f"run {run_id} has no logged examples to test {env!r} with",
            hint="log some with run.log_examples(inputs, expected_outputs), or pass --examples FILE",
        )
    return examples


def ask(client: DeployedModel, inputs: list) -> list[dict]:
    answers = []
    for given in inputs:
        try:
            answers.append({"output": client.predict(given)})
        except RemoteError as exc:
            answers.append({"error": str(exc)})
    return answers


def examples_for(settings: Settings, live: Status, env: str, examples_file: str | Path | None = None) -> dict:
    """``examples_file`` when given, else the examples logged with the run ``env`` runs."""
    if examples_file:
        return read_examples_file(examples_file)
    return logged_examples(settings, live.run_id, env)


def smoke_test(
    settings: Settings,
    env: str | None = None,
    *,
    examples_file: str | Path | None = None,
    examples: dict | None = None,
    client: DeployedModel | None = None,
) -> dict:
    """Test what runs in ``env`` with its run's examples (or ``examples_file``, or ``examples``)."""

    target = target_for(settings, env)
    live = target.status()
    name = target.environment.name
    if not live.deployed:
        raise NotFoundError(f"nothing is deployed to {name!r}", hint=f"deploy first: vci deploy RUN_ID --env {name}")
    examples = examples or examples_for(settings, live, name, examples_file)
    client = client or target.client(deadline=20.0)
    answers = ask(client, examples["inputs"])
    failures = check_answers(examples["inputs"], answers, examples.get("expected_outputs"))
    return {
        "environment": name,
        "digest": live.digest,
        "run_id": live.run_id,
        "passed": not failures,
        "checked": len(answers),
        "failures": failures,
    }
