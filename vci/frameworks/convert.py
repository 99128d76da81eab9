"""JSON in, framework data out, and back: rows, columns and records to arrays or DataFrames, results to lists.

Inputs a framework model accepts (the same for every family that takes tables):

- a list of rows ``[[5.1, 3.5], [6.7, 3.0]]``        -> one output per row
- one row ``[5.1, 3.5]``                              -> one output
- a dict of columns ``{"x": [1, 2], "y": [3, 4]}``    -> one output per row
- a list of records ``[{"x": 1, "y": 3}, ...]``       -> one output per record
- one record ``{"x": 1, "y": 3}``                     -> one output

Columns become a pandas DataFrame when pandas is installed (models fit on DataFrames want one),
else an array in the model's column order.
"""

from __future__ import annotations

from ..errors import ModelError
from ..jsonwire import json_default


def _scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def as_table(data):
    """``(table, single)``: a list of rows, a dict of columns or a list of records, and whether the
    request was one row/record (so the answer is one output, not a list)."""
    if isinstance(data, dict):
        if data and all(_scalar(v) for v in data.values()):
            return [data], True
        if all(isinstance(v, list) for v in data.values()):
            return data, False
        raise ModelError("a dict input must map column names to lists (or to single values)", status=422)
    if isinstance(data, list):
        if data and all(_scalar(v) for v in data):
            return [data], True
        return data, False
    raise ModelError(f"expected a list of rows, a row, or a dict of columns; got {type(data).__name__}", status=422)


def is_columnar(table) -> bool:
    """A dict of columns or a list of records (named inputs)."""
    return isinstance(table, dict) or isinstance(table, list) and bool(table) and isinstance(table[0], dict)


def to_frame(table, columns: list[str] | None = None):
    """A DataFrame (pandas installed) or a 2-D array in ``columns`` order; plain rows get ``columns``."""
    try:
        import pandas
    except ImportError:
        pandas = None
    if pandas is not None:
        if isinstance(table, dict):
            frame = pandas.DataFrame(table)
        elif is_columnar(table):
            frame = pandas.DataFrame.from_records(table)
        else:
            return pandas.DataFrame(table, columns=columns) if columns else to_array(table)
        return _select(frame, columns) if columns else frame
    if is_columnar(table):
        return to_array(_column_rows(table, columns))
    return to_array(table)


def _select(frame, columns: list[str]):
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ModelError(f"missing input columns: {', '.join(missing)}", status=422)
    return frame[columns]


def _column_rows(table, columns: list[str] | None) -> list[list]:
    records = records_of_columns(table) if isinstance(table, dict) else table
    order = columns or (list(records[0]) if records else [])
    try:
        return [[record[c] for c in order] for record in records]
    except KeyError as exc:
        raise ModelError(f"missing input column: {exc.args[0]}", status=422) from None


def records_of_columns(table: dict) -> list[dict]:
    """A dict of equally long columns as records, one per row (422 when the lengths differ)."""
    try:
        return [dict(zip(table, values, strict=True)) for values in zip(*table.values(), strict=True)]
    except ValueError:
        lengths = ", ".join(f"{name}: {len(values)}" for name, values in table.items())
        raise ModelError(f"the input columns differ in length ({lengths})", status=422) from None


def to_array(table, dtype=None):
    """A numpy array of a list of rows (named inputs in their given order)."""
    import numpy

    if is_columnar(table):
        table = _column_rows(table, None)
    try:
        return numpy.asarray(table, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"the input is not a rectangular table of numbers: {exc}", status=422) from None


def to_jsonable(value):
    """numpy arrays and scalars, tensors, pandas objects (nested in lists, tuples, dicts) -> JSON-able."""
    if _scalar(value):
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu()
    if hasattr(value, "columns") and hasattr(value, "to_dict"):  # a pandas DataFrame
        return to_jsonable(value.to_dict("records"))
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return to_jsonable(json_default(value))  # numpy arrays and scalars, pandas Series, tensors, sets
