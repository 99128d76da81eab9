"""A .proto file (the proto3 subset vci's own protocols use) compiled to protobuf message classes at run time.

Why not protoc: generated code would be committed or produced at image build time by grpcio-tools
(a compiler of ~8 MB in every image, and a build step for every `vci serve` from a checkout). The
subset read here is what grpc_predict_v2.proto uses: ``syntax``, ``package``, messages (nested),
scalar, message and ``map<K, V>`` fields, ``repeated``, ``oneof``, a service of unary rpcs, ``//`` and
``/* */`` comments. The descriptor it builds is the one protoc builds (tests/serve/test_v2_grpc.py
compares them field by field), so the wire format is protobuf's own: protobuf's runtime does the bytes.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|(?P<tok>"[^"]*"|[A-Za-z_][\w.]*|\d+|[{}()<>;=,])', re.S)
_SCALARS = {
    "double": 1,
    "float": 2,
    "int64": 3,
    "uint64": 4,
    "int32": 5,
    "fixed64": 6,
    "fixed32": 7,
    "bool": 8,
    "string": 9,
    "bytes": 12,
    "uint32": 13,
    "sfixed32": 15,
    "sfixed64": 16,
    "sint32": 17,
    "sint64": 18,
}
_MESSAGE, _OPTIONAL, _REPEATED = 11, 1, 3


class ProtoSyntaxError(ValueError):
    """The .proto is outside the subset this compiler reads."""


def _tokens(text: str) -> list[str]:
    out, at = [], 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            raise ProtoSyntaxError(f"unexpected character {text[at]!r} at offset {at}")
        if match.group("tok"):
            out.append(match.group("tok"))
        at = match.end()
    return out


class _Reader:
    def __init__(self, tokens: list[str]):
        self.tokens, self.at = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ProtoSyntaxError(f"expected {expected or 'a token'} at token {self.at}, got {token!r}")
        self.at += 1
        return token


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def parse(text: str, file_name: str):
    """The ``FileDescriptorProto`` of ``text`` (type names resolved to their full names)."""
    from google.protobuf import descriptor_pb2

    reader = _Reader(_tokens(text))
    proto = descriptor_pb2.FileDescriptorProto(name=file_name)
    while (token := reader.peek()) is not None:
        if token == "syntax":
            reader.take(), reader.take("=")
            proto.syntax = reader.take().strip('"')
            reader.take(";")
        elif token == "package":
            reader.take()
            proto.package = reader.take()
            reader.take(";")
        elif token == "message":
            _message(reader, proto.message_type.add())
        elif token == "service":
            _service(reader, proto.service.add())
        else:
            raise ProtoSyntaxError(f"unexpected {token!r} at the top level")
    _resolve(proto)
    return proto


def _message(reader: _Reader, message) -> None:
    reader.take("message")
    message.name = reader.take()
    reader.take("{")
    while reader.peek() != "}":
        if reader.peek() == "message":
            _message(reader, message.nested_type.add())
        elif reader.peek() == "oneof":
            reader.take()
            index = len(message.oneof_decl)
            message.oneof_decl.add(name=reader.take())
            reader.take("{")
            while reader.peek() != "}":
                _field(reader, message).oneof_index = index
            reader.take("}")
        else:
            _field(reader, message)
    reader.take("}")


def _field(reader: _Reader, message):
    label = _OPTIONAL
    if reader.peek() == "repeated":
        reader.take()
        label = _REPEATED
    if reader.peek() == "map":
        return _map_field(reader, message)
    kind = reader.take()
    name = reader.take()
    reader.take("=")
    number = int(reader.take())
    reader.take(";")
    field = message.field.add(name=name, number=number, label=label, json_name=_json_name(name))
    if kind in _SCALARS:
        field.type = _SCALARS[kind]
    else:
        field.type, field.type_name = _MESSAGE, kind  # resolved by _resolve
    return field


def _map_field(reader: _Reader, message):
    reader.take("map"), reader.take("<")
    key = reader.take()
    reader.take(",")
    value = reader.take()
    reader.take(">")
    name = reader.take()
    reader.take("=")
    number = int(reader.take())
    reader.take(";")
    entry_name = "".join(part[:1].upper() + part[1:] for part in name.split("_")) + "Entry"
    entry = message.nested_type.add(name=entry_name)
    entry.options.map_entry = True
    for field_name, kind, field_number in (("key", key, 1), ("value", value, 2)):
        f = entry.field.add(name=field_name, number=field_number, label=_OPTIONAL, json_name=field_name)
        if kind in _SCALARS:
            f.type = _SCALARS[kind]
        else:
            f.type, f.type_name = _MESSAGE, kind
    return message.field.add(
        name=name, number=number, label=_REPEATED, type=_MESSAGE, type_name=entry_name, json_name=_json_name(name)
    )


def _service(reader: _Reader, service) -> None:
    reader.take("service")
    service.name = reader.take()
    reader.take("{")
    while reader.peek() != "}":
        reader.take("rpc")
        method = service.method.add(name=reader.take())
        reader.take("(")
        method.input_type = reader.take()
        reader.take(")"), reader.take("returns"), reader.take("(")
        method.output_type = reader.take()
        reader.take(")")
        if reader.peek() == "{":  # an empty options block, which protoc records as such
            reader.take("{"), reader.take("}")
            method.options.SetInParent()
        else:
            reader.take(";")
    reader.take("}")


def _resolve(proto) -> None:
    """Type names to full names (``.package.Outer.Inner``), searched from the innermost scope out."""
    prefix = f".{proto.package}" if proto.package else ""
    known: set[str] = set()

    def collect(messages, scope: str) -> None:
        for m in messages:
            known.add(f"{scope}.{m.name}")
            collect(m.nested_type, f"{scope}.{m.name}")

    def lookup(name: str, scope: str) -> str:
        while True:
            candidate = f"{scope}.{name}"
            if candidate in known:
                return candidate
            if not scope:
                raise ProtoSyntaxError(f"unknown type {name!r}")
            scope = scope.rsplit(".", 1)[0] if "." in scope[1:] else ""

    def fix(messages, scope: str) -> None:
        for m in messages:
            inner = f"{scope}.{m.name}"
            for f in m.field:
                if f.type == _MESSAGE:
                    f.type_name = lookup(f.type_name, inner)
            fix(m.nested_type, inner)

    collect(proto.message_type, prefix)
    fix(proto.message_type, prefix)
    for service in proto.service:
        for method in service.method:
            method.input_type = lookup(method.input_type, prefix)
            method.output_type = lookup(method.output_type, prefix)


def message_classes(proto) -> dict[str, Any]:
    """``{full message name: class}`` for a FileDescriptorProto, in a descriptor pool of their own."""
    from google.protobuf import descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    found = {}

    def walk(descriptor) -> None:
        found[descriptor.full_name] = message_factory.GetMessageClass(descriptor)
        for nested in descriptor.nested_types:
            walk(nested)

    for descriptor in pool.FindFileByName(proto.name).message_types_by_name.values():
        walk(descriptor)
    return found
