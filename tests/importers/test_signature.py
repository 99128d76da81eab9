"""MLflow signatures as vci schemas (pure): columns accept rows and records of their types and refuse other
widths; a tensor its nested fixed dimensions; what JSON cannot carry is a problem, not a guess."""

import json

from vci.importers.signature import input_schema, output_schema, parse_side
from vci.validator import Validator

COLUMNS = json.dumps([{"type": "double", "name": "a"}, {"type": "string", "name": "b", "required": False}])


def accepts(schema, value) -> bool:
    return Validator(schema).problem(value) is None


def test_columns_take_rows_and_records_of_their_types():
    mapped = input_schema(parse_side(COLUMNS, "input"))
    assert mapped.columns == ["a", "b"] and mapped.width == 2
    assert accepts(mapped.schema, [[1.5, "x"], [2, "y"]]) and accepts(mapped.schema, [1.5, "x"])
    assert accepts(mapped.schema, [{"a": 1.0, "b": "x"}]) and accepts(mapped.schema, {"a": 1.0})  # b optional
    assert not accepts(mapped.schema, [[1.5]]) and not accepts(mapped.schema, [["x", 1.5]])
    assert not accepts(mapped.schema, [{"b": "x"}])


def test_a_tensor_keeps_its_fixed_dimensions_after_the_batch():
    spec = [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2, 3]}}]
    mapped = input_schema(spec)
    assert mapped.dtype == "float32" and mapped.columns is None
    assert accepts(mapped.schema, [[[1, 2, 3], [4, 5, 6]]])
    assert not accepts(mapped.schema, [[[1, 2], [4, 5]]]) and not accepts(mapped.schema, [[[1, 2, "x"], [4, 5, 6]]])


def test_outputs_one_column_or_a_tensor():
    assert output_schema([{"type": "long"}]).schema == {"type": "array", "items": {"type": "integer"}}
    probs = output_schema([{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}])
    assert accepts(probs.schema, [[0.1, 0.2, 0.7]]) and not accepts(probs.schema, [[0.5, 0.5]])
    assert "2 output columns" in output_schema([{"type": "long"}, {"type": "double"}]).problem


def test_what_json_cannot_carry_is_reported():
    assert "'blob' is of type 'binary'" in input_schema([{"type": "binary", "name": "blob"}]).problem
    assert "no input signature" in input_schema(None).problem
    two = [{"type": "tensor", "name": n, "tensor-spec": {"dtype": "int64", "shape": [-1]}} for n in "xy"]
    assert "2 named tensors" in input_schema(two).problem
