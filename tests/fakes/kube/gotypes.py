"""Go's typed JSON decoding as the API server does it: a value of the wrong JSON type is a 400 naming the field.

A kind's types are a table: struct name -> {json field: Go type}, where a type is another struct of the
table, ``[]T`` a list of T, ``string``, ``int32``, ``intstr`` (an int or a string) or ``map`` (a
``map[string]string``). The message is Go's: ``json: cannot unmarshal string into Go struct field
IngressRule.spec.rules.http of type v1.HTTPIngressRuleValue``.
"""

from __future__ import annotations

from .status import undecodable

SCALARS = {"string": "string", "int32": "int32", "intstr": "intstr.IntOrString", "map": "map[string]string"}


def _json_type(value) -> str:
    names = {bool: "bool", int: "number", float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), "value")


def _fits(value, go_type: str) -> bool:
    if value is None:
        return True
    if go_type.startswith("[]"):
        return isinstance(value, list)
    if go_type == "string":
        return isinstance(value, str)
    if go_type == "int32":
        return isinstance(value, int) and not isinstance(value, bool)
    if go_type == "intstr":
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    if go_type == "map":
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    return isinstance(value, dict)


def _go_name(go_type: str) -> str:
    """How Go names the type in an unmarshal error: ``[]v1.NetworkPolicyPeer``, ``intstr.IntOrString``."""
    if go_type.startswith("[]"):
        return "[]" + _go_name(go_type[2:])
    return SCALARS.get(go_type, f"v1.{go_type}")


def decode(resource, value, go_type: str, types: dict, parent: str, path: str) -> None:
    """Raise the server's 400 where ``value`` does not decode into ``go_type``; walk into structs and lists."""
    if not _fits(value, go_type):
        what = f"{_json_type(value)} into Go struct field {parent}.{path} of type {_go_name(go_type)}"
        raise undecodable(resource, f"json: cannot unmarshal {what}")
    if value is None or go_type in SCALARS:
        return
    if go_type.startswith("[]"):
        for item in value:
            decode(resource, item, go_type[2:], types, parent, path)
        return
    for key, field_type in types[go_type].items():
        if key in value:
            decode(resource, value[key], field_type, types, go_type, f"{path}.{key}")
