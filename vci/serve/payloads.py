"""Payload logging: one record per sampled prediction, queued on the request path and written by a background thread.

The request path does as little as it can: a sampling draw, one tuple (time, request id, route, status,
latency, the body bytes, the reply bytes) appended to a bounded deque, or a dropped record counted when
the deque is full. No lock, no wake-up of another thread: the writer thread polls the deque every
``POLL`` seconds, so a prediction never waits for logging. The writer parses the JSON, keeps what
``include`` names, replaces the ``redact`` paths (before anything leaves the process) and hands the
records to a sink (vci.serve.sinks). A sink that fails loses its records, counted as dropped; a sink that
is slow fills the deque, and what does not fit is dropped and counted. On SIGTERM :meth:`PayloadLog.close`
writes what is queued within the drain timeout.

A record::

    {"time": "2026-12-01T15:40:00.123Z", "request_id": ..., "trace_id": "4bf92f35..." or null,
     "environment": "staging", "release_id": ..., "run_id": ..., "model_digest": "sha256:...",
     "route": "/predict", "status": 200, "latency_ms": 0.41,
     "input": {...}, "output": {...}}            # or "error": "..." when the status is 400 or more

The gRPC calls are recorded the same way (routes ``/vci.Model/Predict``, ``/vci.Model/BatchPredict`` and
``/inference.GRPCInferenceService/ModelInfer``, the HTTP status their gRPC code was mapped from).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import UsageError
from . import logs, v2_grpc
from .tracing import trace_id_of

POLL = 0.05  # seconds between the writer's looks at the queue
# Records made (and handed to the sink) between two releases of the GIL. A thread that keeps the GIL makes
# the event loop wait up to the switch interval (5 ms) after each of its system calls: with the writer
# working through a whole poll's records at once, /predict at c=8 lost 27% of its throughput and its p99
# went from 22 to 131 ms (benchmarks/payloads.py). 32 records are ~0.4 ms of work; 8 cost more CPU in
# GIL hand-offs (206 against 178 us of server CPU per request, one run each).
CHUNK = 32
REDACTED = "[redacted]"
PREDICTION_ROUTES = ("/predict", "/batch-predict", "/vci.Model/Predict", "/vci.Model/BatchPredict")
V2_GRPC_INFER = "/inference.GRPCInferenceService/ModelInfer"  # and the V2 REST infer routes (paths ending in /infer)
MAX_TEXT = 4096  # characters of a body that is not JSON kept in a record
MAX_INFLATED = 16 * 1024 * 1024  # a gzip body inflating past this is recorded by its size only


@dataclass(frozen=True)
class PayloadSettings:
    """What the server reads from the VCI_PAYLOAD_* variables (vci.envrules.payload_log_env sets them)."""

    sink: str
    sample: float = 1.0
    include: tuple[str, ...] = ("input", "output")
    redact: tuple[tuple[str, ...], ...] = ()
    batch_records: int = 500
    batch_seconds: float = 10.0
    queue: int = 10_000
    environment: str = "-"

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> PayloadSettings | None:
        """The settings, or None when no sink is set (payload logging off)."""
        sink = env.get("VCI_PAYLOAD_SINK", "").strip()
        if not sink:
            return None
        try:
            return cls(
                sink=sink,
                sample=float(env.get("VCI_PAYLOAD_SAMPLE") or 1.0),
                include=tuple(_items(env.get("VCI_PAYLOAD_INCLUDE", "input,output"))),
                redact=tuple(tuple(path.split(".")) for path in _items(env.get("VCI_PAYLOAD_REDACT", ""))),
                batch_records=int(env.get("VCI_PAYLOAD_BATCH_RECORDS") or 500),
                batch_seconds=float(env.get("VCI_PAYLOAD_BATCH_SECONDS") or 10.0),
                queue=int(env.get("VCI_PAYLOAD_QUEUE") or 10_000),
                environment=env.get("VCI_ENVIRONMENT") or "-",
            )
        except ValueError as exc:
            raise UsageError(
                f"a VCI_PAYLOAD_* variable is not a number: {exc}", hint="set payload_log in vci.yaml instead"
            ) from None


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


class PayloadLog:
    """The queue and writer thread of one server process; :meth:`offer` runs on the request path."""

    def __init__(self, settings: PayloadSettings, sink, service):
        self.settings, self.sink, self.service = settings, sink, service
        self.queue: deque = deque()
        self.dropped = {"queue_full": 0, "sink_failed": 0}
        self.written = 0
        self._random = random.Random()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vci-payloads", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def offer(
        self,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        status: int,
        reply: bytes,
        seconds: float,
        request_id: str,
        trace_id: str | None = None,
    ) -> None:
        """Queue one finished request's record (prediction routes only, sampled); never blocks or raises.
        ``trace_id``: the request's W3C trace id (vci.serve.tracing), when it came with one or is traced."""
        if path not in PREDICTION_ROUTES and not path.endswith("/infer") and path != V2_GRPC_INFER:
            return
        if self._admitted():
            self.queue.append((time.time(), request_id, path, status, seconds, headers, body, reply, trace_id))

    def offer_shadow(
        self, body, live: bytes, shadow, agreed: bool, release_id, seconds: float, traceparent: str | None
    ) -> None:
        """Queue the record of one shadow comparison (the mirror's sender thread): the input, production's
        answer and the candidate's, whether they agreed; sampled and bounded as live records are."""
        if self._admitted():
            compared = {"release_id": release_id, "agreed": agreed, "output": shadow}
            trace_id = trace_id_of(traceparent)
            self.queue.append((time.time(), "", "/predict", 200, seconds, {}, body, live, trace_id, compared))

    def _admitted(self) -> bool:
        """Whether a record is sampled and has room in the queue (a full queue's drop is counted)."""
        if self.settings.sample < 1.0 and self._random.random() >= self.settings.sample:
            return False
        if len(self.queue) >= self.settings.queue:
            self.dropped["queue_full"] += 1
            return False
        return True

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            self._write_queued()
            self._call_sink(self.sink.tick, 0)

    def _write_queued(self) -> None:
        """Hand what is queued to the sink in chunks, giving the GIL back to the event loop after each one."""
        while self.queue:
            if getattr(self.sink, "down", False):  # backing off: drop without spending CPU on the records
                lost = len(self.queue)
                self.queue.clear()
                self.dropped["sink_failed"] += lost
                return
            chunk = []
            for _ in range(min(CHUNK, len(self.queue))):
                try:
                    chunk.append(self.record(*self.queue.popleft()))
                except Exception as exc:  # a bug of ours must not stop the writer
                    logs.failure("payload_record_failed", exc)
            self._call_sink(self.sink.write, len(chunk), chunk)
            time.sleep(0)  # see CHUNK

    def _call_sink(self, method, count: int, *args) -> None:
        """Call a sink method; what a failing sink loses is counted (``lost`` is what it says it lost)."""
        try:
            lost = method(*args)
        except Exception as exc:
            self.dropped["sink_failed"] += count
            logs.event("payload_sink_failed", "warning", error=f"{type(exc).__name__}: {exc}"[:300], records=count)
            return
        if lost:
            self.dropped["sink_failed"] += lost
        self.written = self.sink.written

    def close(self, timeout: float) -> None:
        """Stop the writer, then write what is queued and flush the sink, within ``timeout`` seconds."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():  # the sink is stuck: what is queued is lost
            self.dropped["queue_full"] += len(self.queue)
            return
        self._write_queued()
        self._call_sink(self.sink.flush, 0)
        logs.event("payload_log_closed", written=self.written, dropped=sum(self.dropped.values()))

    def record(
        self,
        at: float,
        request_id: str,
        path: str,
        status: int,
        seconds: float,
        headers,
        body: bytes,
        reply: bytes,
        trace_id: str | None = None,
        shadow: dict | None = None,
    ) -> dict:
        """The record of one request, ``include`` and ``redact`` applied (in the writer thread). A V2 gRPC
        call's messages are recorded as protobuf's JSON mapping (the .proto's field names). A shadow
        comparison's (``shadow``: the candidate's release, answer, agreement) is marked ``track: shadow``
        and keeps both answers: ``output`` production's, ``shadow.output`` the candidate's."""
        service, include = self.service, self.settings.include
        manifest = service.manifest or {}
        record = {
            "time": iso_time(at),
            "request_id": request_id,
            "trace_id": trace_id,
            "environment": self.settings.environment,
            "release_id": service.release_id,
            "run_id": manifest.get("id"),
            "model_digest": service.digest,
            "route": path[:200],
            "status": status,
            "latency_ms": round(seconds * 1000, 3),
        }
        grpc_infer = path == V2_GRPC_INFER
        if "input" in include:
            encoding = headers.get("content-encoding")
            record["input"] = parse_message(body, "Request") if grpc_infer else parse_body(body, encoding)
        answer = parse_message(reply, "Response") if grpc_infer and status < 400 else parse_body(reply)
        if status >= 400:
            record["error"] = answer.get("error") if isinstance(answer, dict) else answer
        elif "output" in include:
            record["output"] = answer
        if shadow is not None:
            record["track"] = "shadow"
            record["shadow"] = {**shadow} if "output" in include else {k: v for k, v in shadow.items() if k != "output"}
        for field_path in self.settings.redact:
            redact_path(record, field_path)
            if shadow is not None and field_path[:1] == ("output",):  # the candidate's answer likewise
                redact_path(record["shadow"], field_path)
        return record


_second: list = [None, ""]  # the last whole second iso_time formatted, and its text (the writer is one thread)


def iso_time(at: float) -> str:
    """``2026-12-01T15:40:00.123Z`` (UTC, milliseconds); the second's text is reused while it lasts."""
    second = int(at)
    if _second[0] != second:
        _second[:] = [second, datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")]
    return f"{_second[1]}.{int((at - second) * 1000):03d}Z"


def parse_body(body: bytes, encoding: str | None = None):
    """A body's JSON value; its text (cut at MAX_TEXT) when it is not JSON; ``{"bytes": n}`` when binary."""
    if encoding and encoding.strip().lower() == "gzip":
        inflated = _inflate(body)
        if inflated is None:
            return {"bytes": len(body)}
        body = inflated
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        pass
    try:
        return body.decode()[:MAX_TEXT]
    except UnicodeDecodeError:
        return {"bytes": len(body)}


def parse_message(body: bytes, kind: str):
    """A V2 gRPC ModelInfer request's or response's message (``kind``) as a dict; its size when it does
    not parse."""
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.message import DecodeError

    try:
        message = v2_grpc.messages()[f"ModelInfer{kind}"].FromString(body)
    except DecodeError:
        return {"bytes": len(body)}
    return MessageToDict(message, preserving_proto_field_name=True)


def _inflate(body: bytes) -> bytes | None:
    """A gzip body inflated, at most MAX_INFLATED bytes (the server refused a larger one with 413 already)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(body, MAX_INFLATED)
    except zlib.error:
        return None
    return None if inflater.unconsumed_tail or not inflater.eof else inflated


def redact_path(value, path: tuple[str, ...]) -> None:
    """Replace, in place, what ``path`` names (``*``: every key or item; a number: that item)."""
    if not path:
        return
    head, rest = path[0], path[1:]
    keys: Iterable
    if isinstance(value, dict):
        keys = list(value) if head == "*" else [head] if head in value else []
    elif isinstance(value, list):
        keys = range(len(value)) if head == "*" else [int(head)] if head.isdigit() and int(head) < len(value) else []
    else:
        return
    for key in keys:
        if rest:
            redact_path(value[key], rest)
        else:
            value[key] = REDACTED


def environment_prefix(prefix: str, environment: str) -> str:
    """The S3 key prefix of one environment's records: ``PREFIX/ENV/``."""
    return f"{prefix.strip('/') + '/' if prefix.strip('/') else ''}{environment}/"


def partition(prefix: str, environment: str, at: float) -> str:
    """The S3 key prefix of the records of one environment and hour: ``PREFIX/ENV/YYYY/MM/DD/HH/``."""
    return environment_prefix(prefix, environment) + datetime.fromtimestamp(at, timezone.utc).strftime("%Y/%m/%d/%H/")


def object_name(first: float, sequence: int) -> str:
    """An object's name in its partition: the first record's time, the process and a counter (sortable)."""
    stamp = datetime.fromtimestamp(first, timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
    return f"{stamp}-{os.getpid()}-{sequence:06d}.jsonl.gz"
