"""The JSON fallback the client and the model server share (vci.jsonwire)."""

import json

import pytest

from vci.jsonwire import encode_compact, json_default


class ArrayLike:
    def tolist(self):
        return [[1.5, 2.5]]


def test_array_likes_and_sets_become_lists():
    assert json.loads(encode_compact({"rows": ArrayLike(), "ids": {3, 1, 2}})) == {
        "rows": [[1.5, 2.5]],
        "ids": [1, 2, 3],
    }
    assert encode_compact({"a": [1, 2]}) == b'{"a":[1,2]}'  # compact separators


def test_a_set_of_mixed_members_is_a_list_not_an_error():
    assert sorted(map(str, json_default({1, "one", None}))) == ["1", "None", "one"]


def test_what_json_cannot_carry_is_a_type_error_naming_the_type():
    with pytest.raises(TypeError, match="cannot turn a object into JSON"):
        encode_compact({"x": object()})
