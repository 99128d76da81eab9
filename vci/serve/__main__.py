"""``python -m vci.serve``: serve a model directory, configured by flags or ``VCI_*`` variables.

Flags win over variables::

    --model-dir        VCI_MODEL_DIR        /opt/vci/model
    --host             VCI_HOST             0.0.0.0
    --port             VCI_PORT             8080
    --grpc-port        VCI_GRPC_PORT        off
    --workers          VCI_WORKERS          1 (processes sharing the port)
    --threads          VCI_THREADS          4 (pool for slow model calls)
    --inline-below-ms  VCI_INLINE_BELOW_MS  2 (model calls faster than this on average run on the loop)
    --work-dir         VCI_WORK_DIR         a fresh temp dir (artifacts are materialised there)
    --max-body-bytes   VCI_MAX_BODY_BYTES   16 MiB (one request body; 413 beyond)
    --max-buffered-bytes VCI_MAX_BUFFERED_BYTES 64 MiB (bodies over 64 KiB held at once; 503 beyond)
    --backlog          VCI_BACKLOG          1024 (listen queue; capped by net.core.somaxconn)
    --request-timeout  VCI_REQUEST_TIMEOUT  60 s to send one request
    --drain-timeout    VCI_DRAIN_TIMEOUT    25 s for in-flight requests after SIGTERM
    --max-batch-size   VCI_MAX_BATCH_SIZE   0 = off (else /predict requests batched into batch_predict calls)
    --max-latency-ms   VCI_MAX_LATENCY_MS   5 (the longest a request waits for its batch to fill)
    --ready-file       VCI_READY_FILE       none (JSON with the ports and the load state)
    --no-validate      VCI_VALIDATE=0       check requests against the run's input schema unless given (422)
    --auth-token-file  VCI_AUTH_TOKEN_FILE  none (bearer tokens, one a line, reread when it changes; see vci.serve.auth)
                       VCI_AUTH_TOKEN       a bearer token (taken out of the environment at start)
                       VCI_AUTH_ALL_ROUTES  false (true: health, readiness and metrics need a token too)
                       VCI_IMAGE_DIGEST     reported by /metadata, as is VCI_RELEASE_ID (the metrics' release label)
                       VCI_TRACK            stable (or canary, shadow: the metrics' track label)
                       VCI_PAYLOAD_SINK     off (stdout, file:/PATH, http(s)://URL, s3://BUCKET/PREFIX: payload
                                            logging, with VCI_PAYLOAD_SAMPLE, _INCLUDE, _REDACT, _BATCH_RECORDS,
                                            _BATCH_SECONDS, _QUEUE and VCI_ENVIRONMENT; see vci.serve.payloads)
                       OTEL_EXPORTER_OTLP_ENDPOINT  off (http(s)://COLLECTOR:4318: each prediction's spans over
                                            OTLP/HTTP, with the standard OTEL_* variables; a request's
                                            traceparent is passed on either way; see vci.serve.tracing)

Exit status: 0 after a graceful shutdown, else the VciError's exit code (9: a blob failed verification).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from ..errors import UsageError, VciError
from . import logs
from .server import DEFAULT_BACKLOG, DEFAULT_MAX_BODY, DEFAULT_MAX_BUFFERED, run_server


def _env(env, name: str, default, kind=int):
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        return kind(value)
    except ValueError:
        raise UsageError(f"{name}={value!r} is not a {kind.__name__}") from None


def _flag(env, name: str, default: bool) -> bool:
    value = (env.get(name) or "").strip().lower()
    if value == "":
        return default
    if value not in ("0", "1", "true", "false"):
        raise UsageError(f"{name}={value!r} is not a boolean", hint=f"set {name}=0 or {name}=1")
    return value in ("1", "true")


def parse_options(argv: list[str], env=os.environ) -> dict:
    """Keyword arguments for run_server from ``argv`` and the environment (flags win)."""
    p = argparse.ArgumentParser(prog="python -m vci.serve", description="Serve a vci model directory.")
    p.add_argument("--model-dir", default=env.get("VCI_MODEL_DIR") or "/opt/vci/model")
    p.add_argument("--host", default=env.get("VCI_HOST") or "0.0.0.0")
    p.add_argument("--port", type=int, default=_env(env, "VCI_PORT", 8080))
    p.add_argument("--grpc-port", type=int, default=_env(env, "VCI_GRPC_PORT", None))
    p.add_argument("--workers", type=int, default=_env(env, "VCI_WORKERS", 1))
    p.add_argument("--threads", type=int, default=_env(env, "VCI_THREADS", 4))
    p.add_argument("--inline-below-ms", type=float, default=_env(env, "VCI_INLINE_BELOW_MS", 2.0, float))
    p.add_argument("--work-dir", default=env.get("VCI_WORK_DIR") or None)
    p.add_argument("--max-body-bytes", type=int, default=_env(env, "VCI_MAX_BODY_BYTES", DEFAULT_MAX_BODY))
    p.add_argument("--max-buffered-bytes", type=int, default=_env(env, "VCI_MAX_BUFFERED_BYTES", DEFAULT_MAX_BUFFERED))
    p.add_argument("--backlog", type=int, default=_env(env, "VCI_BACKLOG", DEFAULT_BACKLOG))
    p.add_argument("--request-timeout", type=float, default=_env(env, "VCI_REQUEST_TIMEOUT", 60.0, float))
    p.add_argument("--drain-timeout", type=float, default=_env(env, "VCI_DRAIN_TIMEOUT", 25.0, float))
    p.add_argument("--max-batch-size", type=int, default=_env(env, "VCI_MAX_BATCH_SIZE", 0))
    p.add_argument("--max-latency-ms", type=float, default=_env(env, "VCI_MAX_LATENCY_MS", 5.0, float))
    p.add_argument("--ready-file", default=env.get("VCI_READY_FILE") or None)
    p.add_argument("--no-validate", dest="validate", action="store_false", default=_flag(env, "VCI_VALIDATE", True))
    p.add_argument("--auth-token-file", default=env.get("VCI_AUTH_TOKEN_FILE") or None)
    a = p.parse_args(argv)
    return dict(
        model_dir=a.model_dir,
        host=a.host,
        port=a.port,
        grpc_port=a.grpc_port,
        workers=a.workers,
        threads=a.threads,
        inline_below=a.inline_below_ms / 1000,
        work_dir=a.work_dir,
        max_body_bytes=a.max_body_bytes,
        max_buffered_bytes=a.max_buffered_bytes,
        backlog=a.backlog,
        request_timeout=a.request_timeout,
        drain_timeout=a.drain_timeout,
        max_batch_size=a.max_batch_size,
        max_latency=a.max_latency_ms / 1000,
        ready_file=a.ready_file,
        validate=a.validate,
        auth_token_file=a.auth_token_file,
        image_digest=env.get("VCI_IMAGE_DIGEST") or None,
        release_id=env.get("VCI_RELEASE_ID") or None,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the server; return the process exit status."""
    stop = threading.Event()  # a SIGTERM before the event loop takes over must still stop us (PID 1
    for sig in (signal.SIGTERM, signal.SIGINT):  # ignores SIGTERM without a handler)
        signal.signal(sig, lambda *_: stop.set())
    try:
        options = parse_options(sys.argv[1:] if argv is None else argv)
        run_server(**options, stop_event=stop)
    except VciError as exc:
        logs.event("exit", "error", error=str(exc), code=exc.exit_code)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(code)  # do not wait for a predict thread stuck past the drain timeout
