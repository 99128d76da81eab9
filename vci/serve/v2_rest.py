"""The Open Inference Protocol's REST routes (``/v2/...``) over the served model, and its model call.

One model is served: its name is the run's project and its only version the model digest (a request
may name the version ``sha256:...`` or leave it out). Routes (``{m}`` is ``models/NAME`` or
``models/NAME/versions/VERSION``)::

    GET  /v2                  server metadata: name, version, extensions
    GET  /v2/health/live      200 {"live": true} while the process serves
    GET  /v2/health/ready     200 {"ready": true} once the model is ready, 400 before (the protocol's 4xx)
    GET  /v2/{m}              model metadata: name, versions, platform, inputs, outputs
    GET  /v2/{m}/ready        200 / 400 as /v2/health/ready
    POST /v2/{m}/infer        tensors in, tensors out (vci.serve.v2)

Errors are ``{"error": message}`` (and vci's ``request_id``). A model is called with numpy arrays:
``predict_tensors(inputs)`` when its class has one (the framework adapters do, vci.frameworks.base),
else ``predict(inputs)``; under batching ``batch_predict_tensors(items)`` or ``batch_predict(items)``.
"""

from __future__ import annotations

import json
from typing import Any

from .. import __version__
from . import v2
from .service import Reply, error_reply

SERVER_NAME = "vci"
LIVE = Reply(200, b'{"live":true}')  # the protocol's status code, and the body KServe's client reads too
READY = Reply(200, b'{"ready":true}')
ROUTE_TEMPLATES = (
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/{name}",
    "/v2/models/{name}/ready",
    "/v2/models/{name}/infer",
)


def is_v2(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


def parse_path(path: str) -> tuple[str, str | None, str | None] | None:
    """``(route template, model name, version)`` of a V2 path, or None when it is no V2 route."""
    if path in ("/v2", "/v2/health/live", "/v2/health/ready"):
        return path, None, None
    parts = path.split("/")
    if len(parts) < 4 or parts[2] != "models" or not parts[3]:
        return None
    name, rest, version = parts[3], parts[4:], None
    if len(rest) >= 2 and rest[0] == "versions" and rest[1]:
        version, rest = rest[1], rest[2:]
    if rest == []:
        return "/v2/models/{name}", name, version
    if rest in (["ready"], ["infer"]):
        return f"/v2/models/{{name}}/{rest[0]}", name, version
    return None


def method_of(template: str) -> str:
    return "POST" if template.endswith("/infer") else "GET"


def route_label(path: str) -> str:
    """The metrics label of a V2 path: its template, so model names never become label values."""
    parsed = parse_path(path)
    return parsed[0] if parsed else "other"


def model_name(service) -> str:
    return (service.manifest or {}).get("project") or "model"


def unknown_model(service, name: str | None, version: str | None) -> str | None:
    """Why ``name``/``version`` is not the served model (404), or None when it is."""
    if service.manifest is None:
        return None  # still loading: readiness and infer answer "not ready" instead
    if name != model_name(service):
        return f"no model {str(name)[:80]!r}: this server serves {model_name(service)!r}"
    if version is not None and version != service.digest:
        return f"model {name!r} has no version {version[:80]!r}: its version is {service.digest}"
    return None


def get_reply(service, template: str, name: str | None, version: str | None, request_id: str) -> Reply:
    """Answer one of the V2 GET routes (cheap: runs on the loop)."""
    if template == "/v2/health/live":
        return LIVE
    if template == "/v2":
        body = {"name": SERVER_NAME, "version": __version__, "extensions": list(v2.EXTENSIONS)}
        return Reply(200, json.dumps(body).encode())
    if name is not None and (why := unknown_model(service, name, version)) is not None:
        return error_reply(404, why, request_id)
    if template.endswith("ready"):
        return READY if service.ready else _not_ready(service, request_id)
    if not service.ready:
        return _not_ready(service, request_id)
    return Reply(200, json.dumps(model_metadata(service)).encode())


def _not_ready(service, request_id: str) -> Reply:
    """400: the protocol's 4xx for "not ready" (a probe, Triton's client and KServe's read the status)."""
    body = {"ready": False, "error": f"the model is not ready: {service.reason}", "request_id": request_id}
    return Reply(400, json.dumps(body).encode())


def model_metadata(service) -> dict:
    """The protocol's model metadata; inputs and outputs as the model class declares them (``v2_inputs``,
    ``v2_outputs``: lists of ``{name, datatype, shape}``), else empty."""
    model = service.model
    manifest = service.manifest or {}
    return {
        "name": model_name(service),
        "versions": [service.digest],
        "platform": (manifest.get("model") or {}).get("class") or "python",
        "inputs": list(getattr(model, "v2_inputs", None) or []),
        "outputs": list(getattr(model, "v2_outputs", None) or []),
    }


class InferCall:
    """One V2 infer request as a codec of :meth:`ModelService.call` (vci.serve.service.Codec)."""

    def __init__(self, name: str, version: str | None, header_length: str | None):
        self.name, self.version, self.header_length = name, version, header_length
        self.request: v2.InferRequest | None = None
        self.version_shown: str | None = None

    def decode(self, service, body: bytes, request_id: str) -> Any:
        if (why := unknown_model(service, self.name, self.version)) is not None:
            return error_reply(404, why, request_id)
        if not service.ready:
            return error_reply(503, f"the model is not ready: {service.reason}", request_id)
        self.version_shown = service.digest
        try:
            length = None if self.header_length is None else int(self.header_length)
            self.request = v2.parse_request(body, length)
            return v2.model_inputs(self.request)
        except ValueError:
            return error_reply(400, "Inference-Header-Content-Length is not a number", request_id)
        except v2.ProtocolError as exc:
            return error_reply(exc.status, exc.message, request_id)

    def run(self, model, data):
        predict = getattr(model, "predict_tensors", None) or model.predict
        return predict(data)

    def run_batch(self, model, items: list):
        batch = getattr(model, "batch_predict_tensors", None) or model.batch_predict
        return batch(items)

    def encode(self, result, request_id: str) -> Reply:
        assert self.request is not None  # decode ran first
        try:
            outputs = v2.output_tensors(result, self.request.outputs)
            body, head_length = v2.encode_response(self.name, self.version_shown, self.request, outputs)
        except v2.ProtocolError as exc:
            return error_reply(exc.status, exc.message, request_id)
        if head_length is None:
            return Reply(200, body)
        return Reply(200, body, "application/octet-stream", f"Inference-Header-Content-Length: {head_length}\r\n")
