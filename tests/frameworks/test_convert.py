"""Inputs (rows, one row, columns, records) and outputs (arrays, tensors, frames) convert as documented."""

import pytest

from vci.errors import ModelError
from vci.frameworks.convert import as_table, to_array, to_frame, to_jsonable


def test_as_table_shapes():
    assert as_table([[1, 2], [3, 4]]) == ([[1, 2], [3, 4]], False)
    assert as_table([1, 2]) == ([[1, 2]], True)
    assert as_table({"a": [1, 2], "b": [3, 4]}) == ({"a": [1, 2], "b": [3, 4]}, False)
    assert as_table({"a": 1, "b": 2}) == ([{"a": 1, "b": 2}], True)
    assert as_table([{"a": 1}]) == ([{"a": 1}], False)
    with pytest.raises(ModelError, match="expected a list of rows"):
        as_table("text")
    with pytest.raises(ModelError) as info:
        as_table({"a": [1], "b": {"c": 1}})
    assert info.value.status == 422


def test_columns_follow_the_model_order_with_or_without_pandas(monkeypatch):
    np = pytest.importorskip("numpy")
    pytest.importorskip("pandas")
    frame = to_frame({"b": [3, 4], "a": [1, 2]}, ["a", "b"])
    assert list(frame.columns) == ["a", "b"] and frame.to_numpy().tolist() == [[1, 3], [2, 4]]
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)
    arr = to_frame([{"b": 3, "a": 1}, {"a": 2, "b": 4}], ["a", "b"])
    assert isinstance(arr, np.ndarray) and arr.tolist() == [[1, 3], [2, 4]]
    with pytest.raises(ModelError, match="missing input column: b"):
        to_frame({"a": [1]}, ["a", "b"])


def test_ragged_rows_are_a_client_error():
    pytest.importorskip("numpy")
    with pytest.raises(ModelError) as info:
        to_array([[1, 2], [3]])
    assert info.value.status == 422


def test_columns_of_different_lengths_are_a_client_error():
    pytest.importorskip("numpy")
    with pytest.raises(ModelError, match=r"differ in length \(a: 2, b: 1\)") as info:
        to_array({"a": [1, 2], "b": [3]})
    assert info.value.status == 422
    assert to_array({"a": [1, 2], "b": [3, 4]}).tolist() == [[1, 3], [2, 4]]


def test_to_jsonable_of_numpy_torch_and_pandas():
    np = pytest.importorskip("numpy")
    value = {"a": np.arange(3), "b": (np.float32(1.5), np.int64(2)), 3: [np.bool_(True)], "s": b"x"}
    assert to_jsonable(value) == {"a": [0, 1, 2], "b": [1.5, 2], "3": [True], "s": "x"}
    pd = pytest.importorskip("pandas")
    assert to_jsonable(pd.DataFrame({"x": [1, 2]})) == [{"x": 1}, {"x": 2}]
    assert to_jsonable(pd.Series([1.0, 2.0])) == [1.0, 2.0]
    torch = pytest.importorskip("torch")
    assert to_jsonable(torch.ones(2, requires_grad=True) * 2) == [2.0, 2.0]
    with pytest.raises(TypeError, match="cannot turn a object into JSON"):
        to_jsonable(object())


def test_to_jsonable_of_sets_is_the_servers_rule():
    assert to_jsonable({"labels": {"b", "a"}, "nested": [frozenset({2, 1})]}) == {
        "labels": ["a", "b"],
        "nested": [[1, 2]],
    }
