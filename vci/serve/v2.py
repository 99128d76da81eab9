"""The Open Inference Protocol (V2) as data: tensors in JSON (and the binary extension) to numpy and back.

Pure: no sockets, no model. The REST routes (vci.serve.v2_rest) and gRPC (vci.serve.v2_grpc) decode a
request to an :class:`InferRequest`, hand :func:`model_inputs` (one numpy array, or a dict of them by
input name) to the model, and encode what it returns with :func:`output_tensors`. The protocol's types:
BOOL, UINT8-64, INT8-64, FP16/32/64 and BYTES (numpy object arrays of ``bytes``).

Binary tensor data (the extension Triton's client uses by default): the request's JSON head is
``Inference-Header-Content-Length`` bytes long and each input whose ``parameters.binary_data_size`` is
set takes that many bytes after it, in order; a BYTES element is a 4-byte little-endian length and its
bytes. An output is answered that way when asked for (its ``parameters.binary_data`` or the request's
``parameters.binary_data_output``).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

# protocol datatype -> numpy dtype name (BYTES: an object array of bytes)
DATATYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
_KIND_TO_DATATYPE = {"b": "BOOL", "U": "BYTES", "S": "BYTES", "O": "BYTES"}
HEADER_LENGTH = "inference-header-content-length"  # the binary extension's request/response header
EXTENSIONS = ("binary_tensor_data",)


class ProtocolError(Exception):
    """A request the protocol refuses: answered ``{"error": message}`` with ``status`` (400, 404, 503)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(slots=True)
class Tensor:
    """A named tensor: its protocol datatype, shape and values (a numpy array of that shape)."""

    name: str
    datatype: str
    shape: list[int]
    data: Any
    parameters: dict = field(default_factory=dict)


@dataclass(slots=True)
class InferRequest:
    """A decoded infer request: its id and parameters, inputs, and the outputs asked for (name -> parameters)."""

    id: str | None
    parameters: dict
    inputs: list[Tensor]
    outputs: dict[str, dict] | None  # None: every output the model produces


def _shape(value, where: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value):
        raise ProtocolError(f"{where}: shape must be a list of non-negative integers, got {json.dumps(value)[:80]}")
    return value


def _datatype(value, where: str) -> str:
    if value not in DATATYPES:
        raise ProtocolError(f"{where}: datatype {str(value)[:40]!r} is not one of {', '.join(DATATYPES)}")
    return value


def _count(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def array_from_json(datatype: str, shape: list[int], data, where: str):
    """A numpy array of ``shape`` from the JSON ``data`` (flat or nested, in row-major order)."""
    import numpy

    if datatype == "BYTES":
        values = numpy.asarray(data, dtype=object).reshape(-1) if data != [] else numpy.empty(0, dtype=object)
        try:
            values = numpy.array([v.encode() if isinstance(v, str) else bytes(v) for v in values], dtype=object)
        except (TypeError, ValueError):
            raise ProtocolError(f"{where}: BYTES data must be strings") from None
    else:
        try:
            values = numpy.asarray(data, dtype=DATATYPES[datatype]).reshape(-1)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ProtocolError(f"{where}: data is not {datatype}: {str(exc)[:120]}") from None
    if values.size != _count(shape):
        raise ProtocolError(f"{where}: shape {shape} holds {_count(shape)} values but data has {values.size}")
    return values.reshape(shape)


def array_from_bytes(datatype: str, shape: list[int], raw, where: str):
    """A numpy array of ``shape`` from the binary extension's (or gRPC raw contents') bytes."""
    import numpy

    if datatype == "BYTES":
        return _bytes_elements(bytes(raw), _count(shape), where).reshape(shape)
    itemsize = numpy.dtype(DATATYPES[datatype]).itemsize
    if len(raw) != _count(shape) * itemsize:
        raise ProtocolError(f"{where}: {len(raw)} bytes of data do not make shape {shape} of {datatype}")
    return numpy.frombuffer(raw, dtype=numpy.dtype(DATATYPES[datatype]).newbyteorder("<")).reshape(shape)


def _bytes_elements(raw: bytes, count: int, where: str):
    import numpy

    values, at = [], 0
    for _ in range(count):
        if at + 4 > len(raw):
            raise ProtocolError(f"{where}: BYTES data ends inside an element's length")
        (size,) = struct.unpack_from("<I", raw, at)
        if at + 4 + size > len(raw):
            raise ProtocolError(f"{where}: a BYTES element of {size} bytes runs past the end of the data")
        values.append(raw[at + 4 : at + 4 + size])
        at += 4 + size
    if at != len(raw):
        raise ProtocolError(f"{where}: BYTES data has {len(raw) - at} bytes after its {count} elements")
    out = numpy.empty(count, dtype=object)
    out[:] = values
    return out


def array_to_bytes(array) -> bytes:
    """The binary form of an array: little-endian row-major values, or length-prefixed BYTES elements."""
    import numpy

    if array.dtype.kind in "USO":
        return b"".join(struct.pack("<I", len(b)) + b for b in map(_as_bytes, array.reshape(-1)))
    return numpy.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def _as_bytes(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def parse_request(body: bytes, header_length: int | None = None) -> InferRequest:
    """Decode a REST infer request: JSON, or a JSON head of ``header_length`` bytes and binary tensor data."""
    head, rest = (body, b"") if header_length is None else (body[:header_length], memoryview(body)[header_length:])
    if header_length is not None and not 0 <= header_length <= len(body):
        raise ProtocolError(f"Inference-Header-Content-Length {header_length} is outside the body of {len(body)} bytes")
    try:
        doc = json.loads(head)
    except ValueError as exc:
        raise ProtocolError(f"the request is not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("the request is nested too deeply") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise ProtocolError('an infer request is a JSON object with a non-empty list "inputs"')
    inputs, offset = [], 0
    for i, item in enumerate(doc["inputs"]):
        tensor, offset = _input(item, i, rest, offset)
        inputs.append(tensor)
    if offset != len(rest):
        raise ProtocolError(f"{len(rest) - offset} bytes of binary data follow the inputs that no input claims")
    return InferRequest(_request_id(doc), _parameters(doc, "request"), inputs, _requested(doc.get("outputs")))


def _input(item, i: int, rest, offset: int) -> tuple[Tensor, int]:
    where = f"inputs[{i}]"
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise ProtocolError(f"{where}: an input is an object with a string name, shape, datatype and data")
    where = f"input {item['name'][:60]!r}"
    shape, datatype = _shape(item.get("shape"), where), _datatype(item.get("datatype"), where)
    parameters = _parameters(item, where)
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(rest):
            raise ProtocolError(f"{where}: binary_data_size {size} is more than the binary data sent")
        data = array_from_bytes(datatype, shape, rest[offset : offset + size], where)
        return Tensor(item["name"], datatype, shape, data, parameters), offset + size
    if "data" not in item:
        raise ProtocolError(f"{where}: has no data (and no binary_data_size)")
    return Tensor(
        item["name"], datatype, shape, array_from_json(datatype, shape, item["data"], where), parameters
    ), offset


def _request_id(doc: dict) -> str | None:
    value = doc.get("id")
    if value is not None and not isinstance(value, str):
        raise ProtocolError("the request id must be a string")
    return value


def _parameters(doc: dict, where: str) -> dict:
    value = doc.get("parameters", {})
    if not isinstance(value, dict):
        raise ProtocolError(f"{where}: parameters must be an object")
    return value


def _requested(outputs) -> dict[str, dict] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise ProtocolError('"outputs" must be a list of objects with a string name')
    return {o["name"]: _parameters(o, f"output {o['name'][:60]!r}") for o in outputs}


def model_inputs(request: InferRequest):
    """What the model is called with: the one input's array, or ``{name: array}`` for several."""
    if len(request.inputs) == 1:
        return request.inputs[0].data
    names = [t.name for t in request.inputs]
    if len(set(names)) != len(names):
        raise ProtocolError("two inputs have the same name")
    return {t.name: t.data for t in request.inputs}


def datatype_of(array) -> str:
    """The protocol datatype of a numpy array (strings and objects are BYTES)."""
    kind = array.dtype.kind
    if kind in _KIND_TO_DATATYPE:
        return _KIND_TO_DATATYPE[kind]
    name = {"f": "FP", "i": "INT", "u": "UINT"}.get(kind)
    if name is None:
        raise ProtocolError(f"the model returned values of numpy type {array.dtype} that V2 has no datatype for", 500)
    return f"{name}{array.dtype.itemsize * 8}"


def output_tensors(result, requested: dict[str, dict] | None) -> list[Tensor]:
    """The model's result as named output tensors (a dict: one per key; anything else: ``output-0``),
    only those ``requested`` (in its order) when the request named outputs."""
    import numpy

    produced = result if isinstance(result, dict) else {"output-0": result}
    tensors = {}
    for name, value in produced.items():
        try:
            array = numpy.asarray(value)
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"output {str(name)[:60]!r} is not a rectangular array: {exc}", 500) from None
        tensors[str(name)] = Tensor(str(name), datatype_of(array), list(array.shape), array)
    if requested is None:
        return list(tensors.values())
    missing = [name for name in requested if name not in tensors]
    if missing:
        raise ProtocolError(f"the model produces no output {missing[0][:60]!r} (it produces {', '.join(tensors)})")
    return [tensors[name] for name in requested]


def _json_values(tensor: Tensor) -> list:
    flat = tensor.data.reshape(-1)
    if tensor.datatype == "BYTES":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat]
    return flat.tolist()


def encode_response(
    model_name: str, model_version: str | None, request: InferRequest, outputs: list[Tensor]
) -> tuple[bytes, int | None]:
    """The REST response body, and the length of its JSON head when binary output data follows it."""
    binary_default = request.parameters.get("binary_data_output") is True
    wanted = request.outputs or {}
    doc: dict[str, Any] = {"model_name": model_name}
    if model_version:
        doc["model_version"] = model_version
    if request.id is not None:
        doc["id"] = request.id
    parts, tensors = [], []
    for tensor in outputs:
        entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        if wanted.get(tensor.name, {}).get("binary_data", binary_default) is True:
            raw = array_to_bytes(tensor.data)
            entry["parameters"] = {"binary_data_size": len(raw)}
            parts.append(raw)
        else:
            entry["data"] = _json_values(tensor)
        tensors.append(entry)
    doc["outputs"] = tensors
    head = json.dumps(doc, separators=(",", ":")).encode()
    if not parts:
        return head, None
    return head + b"".join(parts), len(head)


def error_body(message: str) -> bytes:
    """The protocol's error shape."""
    return json.dumps({"error": message}).encode()
