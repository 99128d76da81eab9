"""JSON between a client and the model server: compact bytes, and one fallback for what json cannot encode.

The fallback is the server's contract for what a model may return, and the client's for what it may
send: numpy arrays and scalars, tensors and pandas objects (anything with ``tolist()``) become lists
and numbers; a set becomes a list, sorted when its members can be (so the same set gives the same bytes
in every process, whatever PYTHONHASHSEED), else in its own order, never an error.
"""

from __future__ import annotations

import json


def json_default(value):
    """``json.dumps``'s ``default``: a JSON-able stand-in for ``value``, else TypeError."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:  # members of different types: any order is a valid JSON list for a set
            return list(value)
    raise TypeError(f"cannot turn a {type(value).__name__} into JSON")


def encode_compact(value) -> bytes:
    """``value`` as compact UTF-8 JSON; TypeError or ValueError for what JSON cannot carry."""
    return json.dumps(value, default=json_default, separators=(",", ":")).encode()
