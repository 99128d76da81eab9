"""The model server that runs inside images: HTTP (and optional gRPC) in front of one model directory.

Routes: ``POST /predict`` (JSON in, the model's JSON out), ``POST /batch-predict`` (a JSON list),
``GET /healthz`` (alive), ``GET /readyz`` (loaded and self-tested), ``GET /metadata``, ``GET /metrics``
(Prometheus), ``GET /openapi.json`` and ``GET /docs`` (the model's contract; a request that does not match
its input schema is 422). Errors are ``{"error": ..., "request_id": ...}``; every response has ``X-Request-Id``.
Start it with ``python -m vci.serve`` (``VCI_*`` variables or flags) or :func:`run_server`.

This package imports only vci.errors, vci.modeldir, vci.validator (and what those import) and the standard library;
grpcio only when gRPC is enabled, boto3 only when payloads are logged to S3 (vci.serve.sinks). Never
kubernetes, docker, the store, runs or the CLI.
"""

from __future__ import annotations

from .server import run_server as run

__all__ = ["run_server"]


def run_server(*args, **kwargs):
    """See :func:`vci.serve.server.run_server` (imported lazily to keep ``import vci.serve`` cheap)."""
    return run(*args, **kwargs)
