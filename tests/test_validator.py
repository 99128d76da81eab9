"""The request validator: each keyword, the path and words of a problem, and agreement with jsonschema."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vci.validator import Validator, schema_problem

jsonschema = pytest.importorskip("jsonschema")


@pytest.mark.parametrize(
    "schema, value, problem",
    [
        ({"type": "integer"}, 1.5, "$: expected integer, got number"),
        ({"type": "integer"}, 2.0, None),  # 2.0 is an integer in JSON Schema
        ({"type": "number"}, True, "$: expected number, got boolean"),
        ({"type": ["string", "null"]}, None, None),
        ({"enum": [1, "a"]}, True, '$: expected one of 1, "a", got true'),
        ({"const": [1]}, [True], "$: expected [1], got array"),
        ({"minimum": 0, "exclusiveMaximum": 1}, 1, "$: expected a number less than 1, got 1"),
        ({"multipleOf": 0.5}, 1.25, "$: expected a multiple of 0.5, got 1.25"),
        ({"minLength": 2}, "a", "$: expected a string of at least 2 characters, got 1"),
        ({"pattern": "^[a-z]+$"}, "A1", '$: expected a string matching ^[a-z]+$, got "A1"'),
        ({"prefixItems": [{"type": "string"}, {"type": "number"}]}, ["a", "b"], "$[1]: expected number, got string"),
        ({"uniqueItems": True}, [1, 1.0], "$: expected unique items"),
        ({"uniqueItems": True}, [1, True], None),
        ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}, '$: unexpected key "b"'),
        ({"patternProperties": {"^x_": {"type": "number"}}}, {"x_1": "no"}, "$.x_1: expected number, got string"),
        ({"properties": {"odd key": {"type": "null"}}}, {"odd key": 0}, '$["odd key"]: expected null, got number'),
        ({"maxProperties": 1}, {"a": 1, "b": 2}, "$: expected at most 1 keys, got 2"),
        ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, 3, "$: matches 2 of the oneOf schemas, not exactly one"),
        ({"not": {"type": "string"}}, "s", "$: matches a schema it must not (not)"),
        ({"allOf": [{"type": "array"}, {"maxItems": 1}]}, [1, 2], "$: expected at most 1 items, got 2"),
        (False, 1, "$: no value is allowed here"),
    ],
)
def test_each_keyword(schema, value, problem):
    assert Validator(schema).problem(value) == problem
    assert jsonschema.Draft202012Validator(schema).is_valid(value) == (problem is None)


def test_any_of_reports_the_branch_that_got_furthest():
    rows = {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
    record = {"type": "object", "required": ["x"]}
    check = Validator({"anyOf": [rows, record]})
    assert check.problem([[1, "2"]]) == "$[0][1]: expected number, got string"
    assert check.problem({"y": 1}) == '$: missing required key "x"'
    assert check.problem(7) == "$: expected array or object, got number"


def test_refs_resolve_recursively():
    tree = {
        "$defs": {
            "node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}
        },
        "$ref": "#/$defs/node",
    }
    assert (
        Validator(tree).problem({"kids": [{"kids": [{"kids": 1}]}]})
        == "$.kids[0].kids[0].kids: expected array, got number"
    )


def test_schema_problems_are_found_before_anything_is_checked():
    assert (
        schema_problem({"properties": {"a": {"type": "text"}}}) == "$.properties.a.type 'text' is not a JSON type "
        "(null, boolean, integer, number, string, array, object)"
    )
    assert (
        schema_problem({"items": {"contains": {}}}) == "$.items uses 'contains', which vci's validator does not check"
    )
    assert schema_problem({"type": "object", "$defs": {"x": {"type": "string"}}}) is None


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(-5, 5, allow_nan=False)
    | st.sampled_from(["", "a", "B1"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["a", "b", "x_1"]), inner, max_size=3),
    max_leaves=12,
)
SCHEMAS = [
    {"type": "array", "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}},
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": ["string", "null"]}}, "required": ["a"]},
    {"anyOf": [{"type": "string", "pattern": "^[a-z]*$"}, {"type": "array", "uniqueItems": True}]},
    {"oneOf": [{"type": "integer"}, {"minimum": 0}], "not": {"const": 3}},
    {"additionalProperties": {"type": "boolean"}, "patternProperties": {"^x_": {"type": "number"}}, "minProperties": 1},
    {"prefixItems": [{"type": "null"}], "items": {"enum": [1, "a", None]}, "maxItems": 3},
    {
        "$defs": {"n": {"anyOf": [{"type": "number"}, {"type": "array", "items": {"$ref": "#/$defs/n"}}]}},
        "$ref": "#/$defs/n",
    },
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
@settings(max_examples=300, deadline=None, derandomize=True)
@given(value=JSON)
def test_it_agrees_with_jsonschema(schema, value):
    ours = Validator(schema).problem(value)
    theirs = jsonschema.Draft202012Validator(schema).is_valid(value)
    assert (ours is None) == theirs, ours
