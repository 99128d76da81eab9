"""A model's schemas (its signature): the JSON Schemas of its input and output, declared, hinted or inferred.

Where a schema comes from, first match wins (``schemas``):

- ``declared``: ``run.log_schema(input=..., output=...)``, a JSON Schema dict or a pydantic model class;
- ``type hints``: ``predict(self, data: list[list[float]]) -> list[int]`` (a pydantic model, a TypedDict,
  lists, dicts, unions and scalars; ``Any`` or a type JSON cannot carry says nothing);
- a framework adapter's ``model.json`` (vci.frameworks): a scikit-learn model's ``n_features_in_`` and
  ``feature_names_in_``, an ONNX graph's inputs, a torch ``Sequential`` that starts with ``Linear``, a
  CatBoost model's features, texts for a spaCy or sentence-transformers pipeline, or the schema an
  adapter states outright (``input_schema``, e.g. a Prophet forecast's horizon or dates);
- ``examples``: the logged example inputs (and expected outputs): types, nesting, object keys, and the
  length of a list inside a list (a table's rows) when every example agrees. The outermost list is a
  batch and a list under a key may have any length.

Every schema vci infers must accept the logged examples: an inferred one that does not (a framework
reading the model's input another way) gives way to the examples'; a declared one that does not is an
error. Pure: the standard library only, so the model server and the CLI both use it.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from typing import Any

from .errors import UsageError
from .validator import Validator, schema_problem

DIALECT = "https://json-schema.org/draft/2020-12/schema"
NUMBER, STRING = {"type": "number"}, {"type": "string"}
JSON_TYPES = {bool: "boolean", int: "number", float: "number", str: "string", type(None): "null"}
ONNX_TYPES = {"float32": NUMBER, "float64": NUMBER, "float16": NUMBER, "int64": {"type": "integer"}}
ONNX_TYPES |= {"int32": {"type": "integer"}, "bool": {"type": "boolean"}, "object": STRING}


def declared(value, what: str) -> dict | None:
    """A JSON Schema dict as given, or a pydantic model class's schema; None for None."""
    if value is None:
        return None
    to_schema = getattr(value, "model_json_schema", None) if isinstance(value, type) else None
    if callable(to_schema):
        value = to_schema()  # a pydantic 2 model class
    if not isinstance(value, dict):
        raise UsageError(
            f"the {what} schema is a {type(value).__name__}, not a JSON Schema",
            hint="pass a JSON Schema dict, a pydantic model class, or None",
        )
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"the {what} schema is not JSON: {exc}") from None
    problem = schema_problem(value)
    if problem:
        raise UsageError(f"the {what} schema is not valid: {problem}", hint="see https://json-schema.org")
    return value


def from_examples(values: list) -> dict | None:
    """The schema every one of ``values`` matches; None without values. The length of a list is kept only
    for a list inside a list (the rows of a table have one width): the outermost list is a batch, and a
    list under a key (``{"tags": [...]}``) may have any length."""
    return _merge(values, row=False) if values else None


def _merge(values: list, row: bool) -> dict:
    kinds: dict[str, list] = {}
    for value in values:
        kind = "array" if isinstance(value, list) else "object" if isinstance(value, dict) else None
        kinds.setdefault(kind or JSON_TYPES.get(type(value), "any"), []).append(value)
    branches = [_of_kind(kind, group, row) for kind, group in kinds.items()]
    if "any" in kinds:
        return {}
    if len(branches) == 1:
        return branches[0]
    if all(set(b) == {"type"} for b in branches):
        return {"type": sorted(b["type"] for b in branches)}
    return {"anyOf": branches}


def _of_kind(kind: str, values: list, row: bool) -> dict:
    if kind == "array":
        items = [item for value in values for item in value]
        schema: dict[str, Any] = {"type": "array"}
        if items:
            schema["items"] = _merge(items, row=True)
        lengths = {len(value) for value in values}
        if row and len(lengths) == 1 and lengths != {0}:
            schema["minItems"] = schema["maxItems"] = lengths.pop()
        return schema
    if kind == "object":
        keys = sorted({key for value in values for key in value})
        properties = {key: _merge([v[key] for v in values if key in v], row=False) for key in keys}
        required = [key for key in keys if all(key in v for v in values)]
        return {"type": "object", "properties": properties, "required": required}
    return {"type": kind}


def from_hints(model_class: type) -> tuple[dict | None, dict | None]:
    """``(input, output)`` schemas from ``predict``'s type hints; None where a hint says nothing."""
    predict = getattr(model_class, "predict", None)
    if not callable(predict):
        return None, None
    try:
        hints = typing.get_type_hints(predict, include_extras=False)
        names = [p for p in inspect.signature(predict).parameters if p != "self"]
    except Exception:  # a hint that names what is not importable here says nothing
        return None, None
    data = hints.get(names[0]) if names else None
    return _hint(data), _hint(hints.get("return"))


def _hint(hint) -> dict | None:
    """The JSON Schema of one type hint, None when JSON cannot say (Any, numpy arrays, classes)."""
    if hint is None or hint is Any:
        return None
    to_schema = getattr(hint, "model_json_schema", None) if isinstance(hint, type) else None
    if callable(to_schema):
        return to_schema()
    if typing.is_typeddict(hint):
        return _typeddict(hint)
    scalar = {bool: {"type": "boolean"}, int: {"type": "integer"}, float: NUMBER, str: STRING}
    if hint in scalar:
        return scalar[hint]
    if hint is type(None):
        return {"type": "null"}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (list, tuple) or hint in (list, tuple):
        return _sequence(origin or hint, args)
    if origin is dict or hint is dict:
        value = _hint(args[1]) if len(args) == 2 else None
        return {"type": "object"} if value is None else {"type": "object", "additionalProperties": value}
    if origin in (typing.Union, types.UnionType):
        branches = [_hint(arg) for arg in args]
        return None if any(b is None for b in branches) else {"anyOf": branches}
    if origin is typing.Literal:
        return {"enum": list(args)}
    return None


def _sequence(kind, args: tuple) -> dict | None:
    if kind is tuple and args and args[-1] is not Ellipsis:
        items = [_hint(arg) for arg in args]
        if any(item is None for item in items):
            return {"type": "array", "minItems": len(args), "maxItems": len(args)}
        return {"type": "array", "prefixItems": items, "minItems": len(args), "maxItems": len(args)}
    item = _hint(args[0]) if args else None
    return {"type": "array"} if item is None else {"type": "array", "items": item}


def _typeddict(hint) -> dict | None:
    properties = {}
    for key, value in typing.get_type_hints(hint).items():
        schema = _hint(value)
        properties[key] = {} if schema is None else schema
    return {"type": "object", "properties": properties, "required": sorted(hint.__required_keys__)}


def from_framework(meta: dict | None) -> dict | None:
    """The input schema a framework adapter's ``model.json`` implies (rows, one row, records), or None."""
    if not meta:
        return None
    family = meta.get("framework")
    if family == "onnx":
        return _onnx(meta.get("inputs") or [])
    if isinstance(meta.get("input_schema"), dict):  # an adapter that states its input (e.g. a forecaster's)
        return meta["input_schema"]
    if meta.get("texts"):  # a pipeline that starts from texts (sklearn, spaCy, sentence-transformers)
        return {"anyOf": [STRING, {"type": "array", "items": STRING}]}
    columns, width = meta.get("columns"), meta.get("n_features")
    tables = ("sklearn", "torch", "catboost", "rlang", "jpmml", "tensorflow", "jax")
    if family in tables and isinstance(width, int) and width > 0:
        return _table(width, columns, NUMBER if not columns and not meta.get("categorical") else {})
    return None


def _table(width: int, columns: list[str] | None, cell: dict) -> dict:
    """Rows of ``width`` cells, one row; with column names also records and one record (vci.frameworks.convert)."""
    row = {"type": "array", "items": cell, "minItems": width, "maxItems": width}
    shapes = [{"type": "array", "items": row, "minItems": 1}, row]
    if columns:
        record: dict = {"type": "object", "properties": {c: cell for c in columns}, "required": list(columns)}
        shapes += [{"type": "array", "items": record, "minItems": 1}, record]
    return {"anyOf": shapes}


def _onnx(inputs: list[dict]) -> dict | None:
    shaped = [i for i in inputs if isinstance(i.get("shape"), list)]
    if len(shaped) != len(inputs) or not inputs:
        return None
    if len(inputs) > 1:
        names = [i["name"] for i in inputs]
        properties = {i["name"]: {"type": "array"} for i in inputs}
        return {"type": "object", "properties": properties, "required": names}
    shape, cell = inputs[0]["shape"], ONNX_TYPES.get(inputs[0].get("dtype", "float32"), {})
    if len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0:
        return _table(shape[1], None, cell)
    return None


def schemas(
    *,
    declared_input: dict | None = None,
    declared_output: dict | None = None,
    model_class: type | None = None,
    framework_meta: dict | None = None,
    examples: dict | None = None,
) -> dict:
    """``{"input", "output", "from": {"input", "output"}}``: each schema and where it came from (module doc).

    UsageError when a declared schema refuses one of the logged examples."""
    inputs = (examples or {}).get("inputs") or []
    outputs = (examples or {}).get("expected_outputs") or []
    hinted = from_hints(model_class) if model_class is not None else (None, None)
    framework = (framework_meta or {}).get("framework", "framework")
    found: dict[str, tuple[dict | None, str | None]] = {}
    for side, given, hint, adapter, values in (
        ("input", declared_input, hinted[0], from_framework(framework_meta), inputs),
        ("output", declared_output, hinted[1], None, outputs),
    ):
        if given is not None:
            _require_examples_match(given, values, side)
            found[side] = (given, "declared")
            continue
        candidates = [(hint, "type hints"), (adapter, framework), (from_examples(values), "examples")]
        found[side] = next(((s, w) for s, w in candidates if s is not None and _accepts(s, values)), (None, None))
    return {
        "input": found["input"][0],
        "output": found["output"][0],
        "from": {"input": found["input"][1], "output": found["output"][1]},
    }


def _accepts(schema: dict, values: list) -> bool:
    check = Validator(schema)
    return all(check.problem(value) is None for value in values)


def _require_examples_match(schema: dict, values: list, side: str) -> None:
    check = Validator(schema)
    for n, value in enumerate(values):
        problem = check.problem(value)
        if problem is not None:
            what = "input" if side == "input" else "expected output"
            raise UsageError(
                f"example {what} {n} does not match the declared {side} schema: {problem}",
                hint=f"fix the example or the {side} schema passed to run.log_schema",
            )


def describe(schema: dict | None) -> str:
    """A schema in a few words for a log line: ``array of (array of 4 number)``."""
    if schema is None:
        return "none (not checked)"
    if "anyOf" in schema:
        return " | ".join(describe(b) for b in schema["anyOf"])
    if "$ref" in schema or "properties" in schema:
        keys = list(schema.get("properties", {}))
        return f"object with keys {', '.join(keys)}" if keys else "object"
    kind = schema.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and isinstance(schema.get("items"), dict):
        low, high = schema.get("minItems"), schema.get("maxItems")
        count = f"{low} " if low is not None and low == high else ""
        inner = describe(schema["items"])
        return f"array of {count}{f'({inner})' if ' ' in inner else inner}"
    return kind


def changes(old: dict | None, new: dict | None, limit: int = 5) -> list[str]:
    """What differs between two runs' input schemas (their manifests' ``schemas``), a line per difference."""
    before, after = (old or {}).get("input"), (new or {}).get("input")
    found = _differences(before, after, "$")
    lines = [f"input schema: {line}" for line in found[:limit]]
    return lines + ([f"input schema: {len(found) - limit} more differences"] if len(found) > limit else [])


def _differences(before, after, path: str) -> list[str]:
    if _canonical(before) == _canonical(after):
        return []
    plain = isinstance(before, dict) and isinstance(after, dict) and not {"anyOf", "oneOf", "$ref"} & {*before, *after}
    if path != "$" and (before is None or after is None):  # a member one side does not name
        return [f"{path}: added ({describe(after)})" if before is None else f"{path}: removed (was {describe(before)})"]
    if not plain or before.get("type") != after.get("type"):
        return [f"{path}: {describe(before)} -> {describe(after)}"]
    found = []
    for key in sorted({*before, *after} - {"items", "properties", "title", "description", "examples", "default"}):
        if _canonical(before.get(key)) != _canonical(after.get(key)):
            found.append(f"{path}: {key} {_shown(before.get(key))} -> {_shown(after.get(key))}")
    found += _differences(before.get("items"), after.get("items"), f"{path}[*]")
    props, new_props = before.get("properties") or {}, after.get("properties") or {}
    for key in sorted({*props, *new_props}):
        found += _differences(props.get(key), new_props.get(key), f"{path}.{key}")
    return found


def _shown(value) -> str:
    return "(none)" if value is None else json.dumps(value)


def _canonical(schema) -> str:
    return json.dumps(schema, sort_keys=True)
