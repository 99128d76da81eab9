"""The Open Inference Protocol over gRPC: ``inference.GRPCInferenceService`` on vci's gRPC port.

The messages are compiled from grpc_predict_v2.proto (beside this file) when the server starts
(vci.serve.protoc; protobuf does the bytes). Each method answers a :class:`Reply` whose body is the
serialized response, or an error Reply that vci.serve.grpc_server turns into a gRPC status (404 ->
NOT_FOUND, 503 -> UNAVAILABLE, 400 -> INVALID_ARGUMENT). ModelInfer is called through
``ModelService.call`` with :class:`GrpcInferCall` as its codec, as REST infer is; tensors come as typed
``contents`` or ``raw_input_contents`` and are answered the same way (FP16 only raw).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from .. import __version__
from . import protoc, v2, v2_rest
from .service import Reply, error_reply

SERVICE = "inference.GRPCInferenceService"
METHODS = ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer")
PROTO = Path(__file__).with_name("grpc_predict_v2.proto")
CONTENTS = {  # datatype -> the InferTensorContents field holding its values
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


@functools.lru_cache(maxsize=1)
def messages() -> dict[str, Any]:
    """The protocol's message classes by short name (``ModelInferRequest``, ...), compiled once."""
    classes = protoc.message_classes(protoc.parse(PROTO.read_text(), PROTO.name))
    return {name.removeprefix("inference."): cls for name, cls in classes.items()}


def available() -> str | None:
    """None when the V2 gRPC service can run here, else why not (protobuf is not installed)."""
    try:
        messages()
    except ImportError as exc:
        return f"protobuf is not installed ({exc})"
    return None


def _ok(message) -> Reply:
    return Reply(200, message.SerializeToString(), "application/grpc")


def reply(service, method: str, request: bytes, request_id: str, trace=None) -> Reply:
    """Answer one method of the service (``request``: its serialized request message; ``trace``: a
    ModelInfer call's vci.serve.tracing.Trace)."""
    m = messages()
    if method == "ModelInfer":
        return service.call(request, False, request_id, GrpcInferCall(), trace)
    if method == "ServerLive":
        return _ok(m["ServerLiveResponse"](live=True))
    if method == "ServerReady":
        return _ok(m["ServerReadyResponse"](ready=service.ready))
    if method == "ServerMetadata":
        return _ok(m["ServerMetadataResponse"](name="vci", version=__version__, extensions=list(v2.EXTENSIONS)))
    asked = m[f"{method}Request"].FromString(request)
    if (why := v2_rest.unknown_model(service, asked.name, asked.version or None)) is not None:
        return error_reply(404, why, request_id)
    if method == "ModelReady":
        return _ok(m["ModelReadyResponse"](ready=service.ready))
    if not service.ready:
        return error_reply(503, f"the model is not ready: {service.reason}", request_id)
    meta = v2_rest.model_metadata(service)
    tensor = m["ModelMetadataResponse.TensorMetadata"]
    return _ok(
        m["ModelMetadataResponse"](
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[tensor(**t) for t in meta["inputs"]],
            outputs=[tensor(**t) for t in meta["outputs"]],
        )
    )


def _parameters(field) -> dict:
    return {key: getattr(value, value.WhichOneof("parameter_choice") or "string_param") for key, value in field.items()}


class GrpcInferCall:
    """One ModelInfer call as a codec of :meth:`ModelService.call` (vci.serve.service.Codec)."""

    def __init__(self):
        self.request: v2.InferRequest | None = None
        self.raw = False
        self.model_name, self.version = "", ""

    def decode(self, service, body: bytes, request_id: str) -> Any:
        from google.protobuf.message import DecodeError

        try:
            message = messages()["ModelInferRequest"].FromString(body)
        except DecodeError:
            return error_reply(400, "the request is not a ModelInferRequest", request_id)
        if (why := v2_rest.unknown_model(service, message.model_name, message.model_version or None)) is not None:
            return error_reply(404, why, request_id)
        if not service.ready:
            return error_reply(503, f"the model is not ready: {service.reason}", request_id)
        self.model_name, self.version = message.model_name, service.digest
        try:
            self.request = self._request(message)
            return v2.model_inputs(self.request)
        except v2.ProtocolError as exc:
            return error_reply(exc.status, exc.message, request_id)

    def _request(self, message) -> v2.InferRequest:
        raw = list(message.raw_input_contents)
        self.raw = bool(raw)
        if raw and len(raw) != len(message.inputs):
            raise v2.ProtocolError(f"{len(raw)} raw_input_contents for {len(message.inputs)} inputs")
        inputs = []
        for i, item in enumerate(message.inputs):
            where = f"input {item.name[:60]!r}"
            datatype, shape = v2._datatype(item.datatype, where), list(item.shape)
            if raw:
                data = v2.array_from_bytes(datatype, shape, raw[i], where)
            elif datatype == "FP16":
                raise v2.ProtocolError(f"{where}: FP16 tensors travel in raw_input_contents")
            else:
                data = v2.array_from_json(datatype, shape, list(getattr(item.contents, CONTENTS[datatype])), where)
            inputs.append(v2.Tensor(item.name, datatype, shape, data, _parameters(item.parameters)))
        outputs = {o.name: _parameters(o.parameters) for o in message.outputs} if message.outputs else None
        return v2.InferRequest(message.id or None, _parameters(message.parameters), inputs, outputs)

    run = v2_rest.InferCall.run
    run_batch = v2_rest.InferCall.run_batch

    def encode(self, result, request_id: str) -> Reply:
        assert self.request is not None  # decode ran first
        try:
            outputs = v2.output_tensors(result, self.request.outputs)
        except v2.ProtocolError as exc:
            return error_reply(exc.status, exc.message, request_id)
        m = messages()
        response = m["ModelInferResponse"](model_name=self.model_name, model_version=self.version)
        response.id = self.request.id or ""
        raw = self.raw or any(t.datatype == "FP16" for t in outputs)
        for tensor in outputs:
            entry = response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
            if raw:
                response.raw_output_contents.append(v2.array_to_bytes(tensor.data))
            else:
                getattr(entry.contents, CONTENTS[tensor.datatype]).extend(_values(tensor))
        return _ok(response)


def _values(tensor: v2.Tensor) -> list:
    flat = tensor.data.reshape(-1)
    if tensor.datatype == "BYTES":
        return [v if isinstance(v, bytes) else str(v).encode() for v in flat]
    return flat.tolist()
