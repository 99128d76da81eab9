"""An MLflow model signature (its MLmodel ``signature:``) as the JSON Schemas of a vci run (vci.schema).

MLflow writes each side as a JSON string: a list of columns (``{"type": "double", "name": "a"}``) or of
tensors (``{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}``). Columns become
what vci's scikit-learn adapter takes (rows in column order, one row, records, one record: the shapes
vci.schema gives a framework's table); one tensor becomes nested arrays of its fixed dimensions. A type
JSON cannot carry (binary, datetime, a map) or several tensors give no schema: ``Mapped.problem`` says why,
and the run's schema is then inferred from its examples as any run's is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

NUMBER, INTEGER = {"type": "number"}, {"type": "integer"}
COLUMN_TYPES: dict[str, dict] = {
    "boolean": {"type": "boolean"},
    "integer": INTEGER,
    "long": INTEGER,
    "float": NUMBER,
    "double": NUMBER,
    "string": {"type": "string"},
}
TENSOR_TYPES: dict[str, dict] = {
    **{f"float{n}": NUMBER for n in (16, 32, 64)},
    **{f"{s}int{n}": INTEGER for s in ("", "u") for n in (8, 16, 32, 64)},
    "bool": {"type": "boolean"},
    "str": {"type": "string"},
    "object": {},
}


@dataclass(frozen=True)
class Mapped:
    """One side of a signature: its JSON Schema and column names (None where there is none), or the problem."""

    schema: dict | None = None
    columns: list[str] | None = None
    width: int | None = None
    dtype: str | None = None  # a tensor's numpy dtype
    problem: str | None = None


def parse_side(text, side: str) -> list[dict] | None:
    """The list of specs MLflow wrote for ``side`` (a JSON string, or the list itself); None if absent."""
    if text is None:
        return None
    specs = json.loads(text) if isinstance(text, str) else text
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise ValueError(f"the signature's {side} is not a list of column or tensor specs")
    return specs


def input_schema(specs: list[dict] | None) -> Mapped:
    """The input schema of a signature's inputs: a table of columns, or one tensor."""
    if not specs:
        return Mapped(problem="the model has no input signature")
    if all(s.get("type") == "tensor" for s in specs):
        return _tensor(specs)
    return _columns(specs)


def output_schema(specs: list[dict] | None) -> Mapped:
    """The output schema: one tensor's nested arrays, or one column's values (one per input row)."""
    if not specs:
        return Mapped(problem="the model has no output signature")
    if all(s.get("type") == "tensor" for s in specs):
        return _tensor(specs)
    if len(specs) == 1 and specs[0].get("type") in COLUMN_TYPES:
        return Mapped(schema={"type": "array", "items": COLUMN_TYPES[specs[0]["type"]]})
    return Mapped(problem=f"{len(specs)} output columns (vci's adapter answers one value per row)")


def _columns(specs: list[dict]) -> Mapped:
    cells = []
    for spec in specs:
        cell = COLUMN_TYPES.get(str(spec.get("type")))
        if cell is None:
            name = spec.get("name", "unnamed")
            return Mapped(problem=f"column {name!r} is of type {spec.get('type')!r}, which JSON has no form for")
        cells.append(cell)
    names = [s.get("name") for s in specs]
    row = {"type": "array", "prefixItems": cells, "minItems": len(cells), "maxItems": len(cells)}
    shapes: list[dict] = [{"type": "array", "items": row, "minItems": 1}, row]
    columns = [str(n) for n in names] if all(isinstance(n, str) for n in names) else None
    if columns:
        required = [str(s["name"]) for s in specs if s.get("required", True)]
        record = {"type": "object", "properties": dict(zip(columns, cells, strict=True)), "required": required}
        shapes += [{"type": "array", "items": record, "minItems": 1}, record]
    return Mapped(schema={"anyOf": shapes}, columns=columns, width=len(cells))


def _tensor(specs: list[dict]) -> Mapped:
    if len(specs) != 1:
        return Mapped(problem=f"{len(specs)} named tensors (vci's JSON input is one value)")
    spec = specs[0].get("tensor-spec") or {}
    cell = TENSOR_TYPES.get(str(spec.get("dtype")))
    shape = spec.get("shape")
    if cell is None or not isinstance(shape, list) or not shape:
        return Mapped(problem=f"a tensor of dtype {spec.get('dtype')!r} and shape {shape!r}")
    schema: dict = dict(cell)
    for dim in reversed(shape[1:]):  # the first dimension is the batch
        schema = {"type": "array", "items": schema, **({"minItems": dim, "maxItems": dim} if dim > 0 else {})}
    width = shape[1] if len(shape) == 2 and shape[1] > 0 else None
    return Mapped(schema={"type": "array", "items": schema}, width=width, dtype=str(spec["dtype"]))
