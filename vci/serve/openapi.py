"""``GET /openapi.json``: an OpenAPI 3.1 document of the served model, from its run manifest.

The model's input and output schemas (vci.schema) are the bodies of ``/predict`` (one input, one output)
and ``/batch-predict`` (lists of them); the logged examples are the examples; every error has the body
``{"error", "request_id"}`` the server sends. The document's server is ``.``, relative to where the
document was fetched, so "try it" on ``/docs`` works behind a path prefix (the API server's proxy) too.
"""

from __future__ import annotations

import json

VERSION = "3.1.0"
ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "request_id": {"type": "string"}},
    "required": ["error", "request_id"],
}
ERRORS = {
    "400": "the body is not JSON (or a batch not a list)",
    "413": "the body is over the limit",
    "415": "the body is not application/json (or its encoding is not gzip)",
    "422": "the input does not match the model's input schema (the message names the first wrong field)",
    "500": "the model failed on this input, or its result cannot be encoded as JSON",
    "503": "the model is not ready",
}


BEARER = {"bearer": {"type": "http", "scheme": "bearer", "description": "a token of the environment's auth setting"}}


def document(manifest: dict | None, metadata: dict, bearer: bool = False) -> dict:
    """The OpenAPI document for a model with this manifest (None while loading: no schemas yet); with
    ``bearer`` the prediction routes require an HTTP bearer token (vci.serve.auth)."""
    manifest = manifest or {}
    schemas = manifest.get("schemas") or {}
    components: dict = {"Error": ERROR}
    given = _component(schemas.get("input"), "Input", components)
    answer = _component(schemas.get("output"), "Output", components)
    examples = manifest.get("examples") or {}
    inputs, outputs = examples.get("inputs") or [], examples.get("expected_outputs") or []
    paths = {
        "/predict": _operation("predict", "One input -> model.predict(input)", given, answer, inputs[:1], outputs[:1]),
        "/batch-predict": _operation(
            "batchPredict",
            "A list of inputs -> model.batch_predict(items) (or predict per item): one output each",
            {"type": "array", "items": given},
            {"type": "array", "items": answer},
            [inputs] if inputs else [],
            [outputs] if outputs else [],
        ),
        "/healthz": _probe("healthz", "200 once the process is up", open_route=bearer),
        "/readyz": _probe(
            "readyz", "200 once the model is loaded and its self-test passed, else 503", open_route=bearer
        ),
        "/metadata": _probe("metadata", "project, run id, model digest, versions"),
    }
    return {
        "openapi": VERSION,
        "info": {
            "title": f"{metadata.get('project') or 'model'} (vci)",
            "version": metadata.get("model_digest") or "loading",
            "description": f"run {metadata.get('run_id')}, model class {metadata.get('model_class')}",
        },
        "servers": [{"url": "."}],
        "paths": paths,
        "components": {"schemas": components, **({"securitySchemes": BEARER} if bearer else {})},
        **({"security": [{"bearer": []}]} if bearer else {}),
    }


def _component(schema, name: str, components: dict) -> dict:
    """A reference to ``schema`` as the component ``name`` (``{}``, anything, when the run has none). Its
    ``$defs`` become components ``NAME.DEF`` and its local ``$ref``s point at them, since a ``$ref`` in
    the document resolves against the document, not against the schema it came from."""
    if schema is None or schema is True:
        return {}
    schema = dict(schema) if isinstance(schema, dict) else schema
    defs = {**schema.pop("definitions", {}), **schema.pop("$defs", {})} if isinstance(schema, dict) else {}
    for key, sub in defs.items():
        components[f"{name}.{key}"] = _rewritten(sub, name)
    components[name] = _rewritten(schema, name)
    return {"$ref": f"#/components/schemas/{name}"}


def _rewritten(node, name: str):
    """``node`` with each local ``$ref`` (``#``, ``#/$defs/X``, ``#/definitions/X``) aimed at the components."""
    if isinstance(node, list):
        return [_rewritten(item, name) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _rewritten(value, name) for key, value in node.items()}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        parts = [p for p in ref[1:].split("/") if p]
        target = name if not parts else f"{name}.{parts[1]}" if len(parts) == 2 else None
        if target is not None:
            out["$ref"] = f"#/components/schemas/{target}"
    return out


def _operation(name: str, summary: str, given: dict, answer: dict, inputs: list, outputs: list) -> dict:
    body: dict = {"schema": given}
    if inputs:
        body["example"] = inputs[0]
    ok: dict = {"schema": answer}
    if outputs:
        ok["example"] = outputs[0]
    responses = {"200": {"description": "the model's output", "content": {"application/json": ok}}}
    responses |= {code: _error(why) for code, why in ERRORS.items()}
    return {
        "post": {
            "operationId": name,
            "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": body}},
            "responses": responses,
        }
    }


def _probe(name: str, summary: str, open_route: bool = False) -> dict:
    """A GET route; ``open_route``: it needs no token even where the others do (health, readiness)."""
    ok = {"description": summary, "content": {"application/json": {"schema": {"type": "object"}}}}
    return {
        "get": {
            "operationId": name,
            "summary": summary,
            "responses": {"200": ok},
            **({"security": []} if open_route else {}),
        }
    }


def _error(why: str) -> dict:
    return {"description": why, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def render(manifest: dict | None, metadata: dict, bearer: bool = False) -> bytes:
    return json.dumps(document(manifest, metadata, bearer)).encode()
