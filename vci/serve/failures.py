"""What the server answers when a model call fails: which failure it was, in words a caller can act on.

Three kinds, each its own message (the server's log has the rest under the same request id):

- ``predict`` (or ``batch_predict``) raised: 500 naming the exception type, never its message or traceback
  (they can carry internals), and the request id to find the ``predict_failed`` log line by;
- the result cannot be encoded as JSON: 500 naming where in the result and the type, and how to convert it;
- the input does not match the model's declared or inferred input schema: 422 naming the first wrong
  field and what was expected (``ModelService.input_check``, filled by vci.serve.schema_check).
"""

from __future__ import annotations

import json

from ..jsonwire import json_default
from . import logs

JSON_SCALARS = (str, int, float, bool, type(None))
PLAIN = "lists, dicts, strings, numbers, bools or None"
CONVERSIONS = {  # qualified type name -> how predict can return it instead
    "datetime.datetime": "value.isoformat()",
    "datetime.date": "value.isoformat()",
    "datetime.time": "value.isoformat()",
    "datetime.timedelta": "value.total_seconds()",
    "decimal.Decimal": "float(value) or str(value)",
    "uuid.UUID": "str(value)",
    "bytes": "value.decode() for text, base64.b64encode(value).decode() for binary",
    "bytearray": "value.decode() for text, base64.b64encode(value).decode() for binary",
    "complex": "[value.real, value.imag]",
    "generator": "list(value)",
    "map": "list(value)",
    "filter": "list(value)",
    "range": "list(value)",
}


def predict_failed(exc: BaseException, request_id: str, batch: bool) -> str:
    """Log the model's exception with its traceback; the message of the 500: its type and the request id."""
    logs.failure("predict_failed", exc, request_id=request_id)
    method = "batch_predict" if batch else "predict"
    return (
        f"the model's {method} raised {type(exc).__name__} on this input (its traceback is in the server "
        f"log under request id {request_id})"
    )


def unencodable(result, exc: Exception, request_id: str) -> str:
    """Log a result JSON cannot encode; the message of the 500: where it is, its type and a conversion."""
    found = find_unencodable(result)
    logs.event("result_not_json", "error", request_id=request_id, path=found and found[0], type=found and found[1])
    if found is None:  # a cycle, or nesting deeper than JSON encoding goes
        return f"the model's result cannot be encoded as JSON ({exc}): return {PLAIN}"
    where, kind = found
    how = CONVERSIONS.get(kind, PLAIN)
    if kind.startswith("key "):
        return f"the model's result has a dict key of type {kind[4:]} at {where}: JSON keys are strings"
    return f"the model's result has a value of type {kind} at {where}, which JSON cannot encode: return {how} instead"


def type_name(value) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def find_unencodable(value, where: str = "result", depth: int = 0) -> tuple[str, str] | None:
    """``(where, type name)`` of the first value in ``value`` that JSON cannot encode, even after the
    server's own conversions (``vci.jsonwire``); a dict key of the wrong type is ``"key TYPE"``; None when
    all of it encodes (or it is nested too deep to look: a cycle)."""
    if depth > 100 or isinstance(value, JSON_SCALARS):
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, JSON_SCALARS):
                return where, f"key {type_name(key)}"
            found = find_unencodable(item, f"{where}[{json.dumps(key) if isinstance(key, str) else key}]", depth + 1)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = find_unencodable(item, f"{where}[{index}]", depth + 1)
            if found:
                return found
        return None
    try:
        converted = json_default(value)
    except TypeError:
        return where, type_name(value)
    return find_unencodable(converted, where, depth + 1)
