"""A model's schemas: inference from examples, type hints and framework adapters, declared schemas, diffs."""

from __future__ import annotations

import logging
from typing import Literal, TypedDict

import pytest

import vci
from vci.errors import UsageError
from vci.schema import changes, declared, describe, from_examples, from_framework, from_hints, schemas
from vci.validator import Validator

IRIS = [[[5.1, 3.5, 1.4, 0.2]], [[6.7, 3.0, 5.2, 2.3], [1, 2, 3, 4]]]


def accepts(schema, value) -> bool:
    return Validator(schema).problem(value) is None


def test_rows_of_numbers_keep_their_width_and_any_number_of_rows():
    schema = from_examples(IRIS)
    assert schema == {
        "type": "array",
        "items": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
    }
    assert accepts(schema, [[1, 2, 3, 4]] * 7)  # the outermost list is a batch
    assert Validator(schema).problem([[1, 2, 3, "4"]]) == "$[0][3]: expected number, got string"
    assert Validator(schema).problem([[1, 2, 3]]) == "$[0]: expected 4 items, got 3"


def test_inner_lists_of_different_lengths_are_not_bounded():
    schema = from_examples([[[1, 2], [3]]])
    assert "minItems" not in schema["items"] and accepts(schema, [[1, 2, 3, 4, 5]])


def test_records_name_their_keys_and_require_those_every_example_has():
    schema = from_examples([{"age": 30, "city": "Oslo", "tags": ["a"]}, {"age": 41.5, "city": None}])
    assert schema["required"] == ["age", "city"]
    assert schema["properties"]["age"] == {"type": "number"}
    assert schema["properties"]["city"] == {"type": ["null", "string"]}
    assert schema["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    assert Validator(schema).problem({"age": 1}) == '$: missing required key "city"'
    assert Validator(schema).problem({"age": "x", "city": "y"}) == "$.age: expected number, got string"


def test_mixed_kinds_become_any_of_and_scalars_a_type_list():
    assert from_examples(["a text", ["two", "texts"]]) == {
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
    }
    assert from_examples([1, True]) == {"type": ["boolean", "number"]}
    assert from_examples([]) is None


class Row(TypedDict):
    x: float
    label: Literal["a", "b"]


def test_type_hints_are_a_declaration():
    class Hinted:
        def predict(self, data: list[list[float]]) -> list[int]: ...

    class Records:
        def predict(self, data: list[Row] | None) -> dict[str, float]: ...

    class Bare:
        def predict(self, data): ...

    assert from_hints(Hinted) == (
        {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        {"type": "array", "items": {"type": "integer"}},
    )
    given, answer = from_hints(Records)
    assert Validator(given).problem([{"x": 1, "label": "c"}]) == '$[0].label: expected one of "a", "b", got "c"'
    assert accepts(given, None) and answer == {"type": "object", "additionalProperties": {"type": "number"}}
    assert from_hints(Bare) == (None, None)


def test_a_pydantic_model_is_declared_by_its_schema():
    pydantic = pytest.importorskip("pydantic")

    class Point(pydantic.BaseModel):
        x: float
        y: float = 0.0

    class Shape(pydantic.BaseModel):
        points: list[Point]

    schema = declared(Shape, "input")
    assert "$defs" in schema  # nested models are references: the validator follows them
    assert Validator(schema).problem({"points": [{"x": 1}, {"y": 2}]}) == '$.points[1]: missing required key "x"'
    assert accepts(schema, {"points": [{"x": 1, "y": 2}]})


@pytest.mark.parametrize(
    "given, fragment",
    [
        ("not a schema", "a str, not a JSON Schema"),
        ({"type": "nubmer"}, "'nubmer' is not a JSON type"),
        ({"if": {"type": "string"}}, "'if', which vci's validator does not check"),
        ({"$ref": "#/$defs/missing"}, "names nothing in the schema"),
        ({"type": "string", "pattern": "("}, "is not a regular expression"),
        ({"const": float("nan")}, "is not JSON"),
    ],
)
def test_a_declared_schema_vci_cannot_apply_is_refused(given, fragment):
    with pytest.raises(UsageError, match="the input schema") as err:
        declared(given, "input")
    assert fragment in str(err.value) and err.value.exit_code == 2


def test_sklearn_adapter_knows_the_width_and_the_column_names():
    plain = from_framework({"framework": "sklearn", "n_features": 4, "columns": None})
    assert accepts(plain, [[1, 2, 3, 4]]) and accepts(plain, [1, 2, 3, 4])  # rows, or one row
    assert Validator(plain).problem([[1, 2, 3]]) == "$[0]: expected 4 items, got 3"
    named = from_framework({"framework": "sklearn", "n_features": 2, "columns": ["a", "b"]})
    assert accepts(named, [{"a": 1, "b": "x"}]) and accepts(named, {"a": [1, 2], "b": [3, 4]})
    assert Validator(named).problem({"a": 1}) == '$: missing required key "b"'
    assert Validator(named).problem("text") == "$: expected array or object, got string"
    texts = from_framework({"framework": "sklearn", "texts": True})
    assert accepts(texts, "one text") and not accepts(texts, [[1]])


def test_onnx_adapter_reads_the_graph_inputs():
    one = from_framework({"framework": "onnx", "inputs": [{"name": "X", "dtype": "int64", "shape": [None, 3]}]})
    assert Validator(one).problem([[1, 2, 3.5]]) == "$[0][2]: expected integer, got number"
    two = from_framework(
        {"framework": "onnx", "inputs": [{"name": "a", "shape": [None, 1]}, {"name": "b", "shape": [None, 1]}]}
    )
    assert Validator(two).problem({"a": [[1]]}) == '$: missing required key "b"'
    assert from_framework({"framework": "onnx", "inputs": [{"name": "X", "dtype": "float32"}]}) is None  # no shape


def test_precedence_declared_then_hints_then_framework_then_examples():
    class Hinted:
        def predict(self, data: list[list[float]]): ...

    meta = {"framework": "sklearn", "n_features": 4}
    examples = {"inputs": IRIS, "expected_outputs": [[0], [1, 2]]}
    sig = schemas(declared_input={"type": "array"}, model_class=Hinted, framework_meta=meta, examples=examples)
    assert sig["from"] == {"input": "declared", "output": "examples"} and sig["input"] == {"type": "array"}
    assert schemas(model_class=Hinted, framework_meta=meta, examples=examples)["from"]["input"] == "type hints"
    assert schemas(framework_meta=meta, examples=examples)["from"]["input"] == "sklearn"
    assert schemas(examples=examples)["from"]["input"] == "examples"
    assert schemas() == {"input": None, "output": None, "from": {"input": None, "output": None}}


def test_an_inferred_schema_that_refuses_the_examples_gives_way_and_a_declared_one_is_an_error():
    meta = {"framework": "sklearn", "n_features": 3}  # the examples have 4 columns: the adapter read it wrong
    examples = {"inputs": IRIS, "expected_outputs": None}
    assert schemas(framework_meta=meta, examples=examples)["from"]["input"] == "examples"
    with pytest.raises(UsageError, match=r"example input 0 does not match .*\$\[0\]: expected 3 items, got 4"):
        schemas(declared_input=from_framework(meta), examples=examples)


def test_changes_name_the_path_and_the_difference():
    old = {"input": from_examples(IRIS)}
    new = {"input": from_examples([[[1, 2, 3, 4, 5]]])}
    assert changes(old, new) == ["input schema: $[*]: maxItems 4 -> 5", "input schema: $[*]: minItems 4 -> 5"]
    assert changes(old, {"input": from_examples(IRIS)}) == []
    assert changes(None, old) == [f"input schema: $: none (not checked) -> {describe(old['input'])}"]
    records = changes({"input": from_examples([{"a": 1}])}, {"input": from_examples([{"a": "x", "b": 1}])})
    assert "input schema: $.a: number -> string" in records and "input schema: $.b: added (number)" in records


def test_a_run_records_its_schemas_in_the_manifest_and_says_what_it_inferred(tmp_path, caplog):
    class Model:
        def __init__(self, artifacts):
            pass

        def predict(self, data):
            return [0 for _ in data]

    run = vci.init("schema", store=str(tmp_path / "store"))
    run.log_model(Model, artifacts=[])
    run.log_examples(IRIS, [[0], [0, 0]])
    with caplog.at_level(logging.INFO, logger="vci"):
        version = run.commit()
    manifest = vci.get_run(run.id, store=str(tmp_path / "store")).manifest
    assert manifest["schemas"]["input"] == from_examples(IRIS)
    assert manifest["schemas"]["from"] == {"input": "examples", "output": "examples"}
    assert "input schema from examples: array of (array of 4 number)" in caplog.text
    other = vci.init("schema", store=str(tmp_path / "store"))
    other.log_model(Model, artifacts=[])
    other.log_examples(IRIS, [[0], [0, 0]])
    other.log_schema(input={"type": "array"})
    assert other.commit() != version  # the schema is part of the model digest


def test_log_schema_refuses_examples_it_does_not_accept(tmp_path):
    class Model:
        def __init__(self, artifacts):
            pass

        def predict(self, data):
            return data

    run = vci.init("schema", store=str(tmp_path / "store"))
    run.log_model(Model, artifacts=[])
    run.log_schema(input={"type": "object"})
    run.log_examples(IRIS)
    with pytest.raises(UsageError, match=r"example input 0 does not match the declared input schema: \$: expected"):
        run.commit()
    assert not list((tmp_path / "store" / "runs").glob("*.json"))  # nothing committed
