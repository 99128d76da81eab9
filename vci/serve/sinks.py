"""Where payload records go (vci.serve.payloads): stdout, a file, an HTTP endpoint receiving CloudEvents, or S3.

Every sink is called from the payload writer thread only, and has the same three methods: ``write``
(records), ``tick`` (called every poll: the S3 sink sends a batch that has waited long enough) and
``flush`` (at shutdown); each returns how many records it lost (None or 0: none) or raises, and
``written`` counts what reached the sink. A sink that fails stays down for a growing pause (``Backoff``),
during which its records are dropped without an attempt: a dead endpoint costs the server no CPU.

- ``stdout``: one JSON object per line on standard output (the server's own log is on stderr), for a
  cluster's log pipeline;
- ``file:/PATH``: JSON lines appended to PATH;
- ``http(s)://URL``: CloudEvents 1.0 in binary mode, as KServe's payload logger sends them: per record a
  ``dev.vci.inference.request`` event (the input as the body) and a ``dev.vci.inference.response`` event
  (the output, or the error), both with ``ce-id`` the request id and the record's other fields as
  ``ce-*`` extension attributes (``ce-environment``, ``ce-releaseid``, ...);
- ``s3://BUCKET/PREFIX``: gzip JSON Lines objects under ``PREFIX/ENV/YYYY/MM/DD/HH/`` (the records' hour,
  UTC), one object per ``batch_records`` records or ``batch_seconds`` seconds, whichever comes first, with
  the standard AWS credentials of the pod or runner (``VCI_S3_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL`` for
  another endpoint). boto3 is imported by this sink only, so the image needs it in the run's requirements.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import sys
import time
from datetime import datetime
from urllib.parse import urlsplit

from ..errors import ServeError
from . import logs
from .payloads import PayloadSettings, object_name, partition

EVENT_TYPES = ("dev.vci.inference.request", "dev.vci.inference.response")
EXTENSIONS = {  # CloudEvents extension attribute names are lower-case letters and digits only
    "environment": "environment",
    "release_id": "releaseid",
    "run_id": "runid",
    "model_digest": "modeldigest",
    "route": "route",
    "status": "status",
    "latency_ms": "latencyms",
}


def sink_for(settings: PayloadSettings):
    """The sink that ``settings.sink`` names; ServeError when it cannot work here (boto3 missing)."""
    spec = settings.sink
    if spec == "stdout":
        return StreamSink(sys.stdout)
    if spec.startswith("file:"):
        return FileSink(spec[len("file:") :])
    if spec.startswith(("http://", "https://")):
        return CloudEventsSink(spec)
    if spec.startswith("s3://"):
        return S3Sink(spec, settings)
    raise ServeError(
        f"unknown payload log sink {spec!r}", hint="stdout, file:/PATH, http(s)://URL or s3://BUCKET/PREFIX"
    )


def preflight(settings: PayloadSettings) -> None:
    """Refuse at start what no record could reach: an S3 sink without boto3, a file sink's missing directory."""
    spec = settings.sink
    if spec.startswith("s3://"):
        try:
            import boto3  # noqa: F401 - only whether the image has it
        except ImportError:
            raise ServeError(
                f"the payload log sink {spec} needs boto3, which this image does not have",
                hint="add boto3 to the run's requirements and package it again, "
                "or log payloads to stdout, a file or an HTTP endpoint",
            ) from None
    elif spec.startswith("file:") and not os.path.isdir(os.path.dirname(spec[len("file:") :]) or "/"):
        raise ServeError(
            f"the payload log sink {spec} is in a directory that does not exist",
            hint="create the directory, or mount a volume there",
        )


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def line(record: dict) -> str:
    return _ENCODER.encode(record) + "\n"


class Backoff:
    """After a failure the sink is down for 1 s, doubling up to 30 s; a success resets it."""

    def __init__(self):
        self.until, self.pause = 0.0, 0.0

    @property
    def down(self) -> bool:
        return time.monotonic() < self.until

    def failed(self, exc: BaseException, records: int) -> int:
        """Note a failure (logged: at most once per pause) and return the records it lost."""
        self.pause = min(max(self.pause * 2, 1.0), 30.0)
        self.until = time.monotonic() + self.pause
        error = f"{type(exc).__name__}: {exc}"[:300]
        logs.event("payload_sink_failed", "warning", error=error, records_lost=records, retry_in_s=self.pause)
        return records

    def succeeded(self) -> None:
        self.pause = 0.0


class StreamSink:
    """JSON lines on a text stream (stdout)."""

    def __init__(self, stream):
        self.stream, self.written = stream, 0

    def write(self, records: list[dict]) -> None:
        self.stream.write("".join(line(record) for record in records))
        self.stream.flush()
        self.written += len(records)

    def tick(self) -> None:
        return None

    def flush(self) -> None:
        self.stream.flush()


class FileSink:
    """JSON lines appended to a file, each chunk in one ``write(2)`` on an O_APPEND descriptor, so the
    workers of one server (or two servers) sharing the file never interleave inside a line."""

    def __init__(self, path: str):
        self.fd, self.written = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640), 0

    def write(self, records: list[dict]) -> None:
        data = "".join(line(record) for record in records).encode()
        while data:
            data = data[os.write(self.fd, data) :]
        self.written += len(records)

    def tick(self) -> None:
        return None

    def flush(self) -> None:
        return None


class CloudEventsSink:
    """Two binary-mode CloudEvents per record POSTed to ``url`` over one keep-alive connection."""

    def __init__(self, url: str, timeout: float = 2.0):
        parts = urlsplit(url)
        self.https, self.host, self.port = parts.scheme == "https", parts.hostname or "", parts.port
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout, self.backoff, self.written = timeout, Backoff(), 0
        self.conn: http.client.HTTPConnection | None = None

    @property
    def down(self) -> bool:
        return self.backoff.down

    def write(self, records: list[dict]) -> int:
        """Send each record's events; the records not sent (the sink failed or is down) are lost."""
        for n, record in enumerate(records):
            if self.backoff.down:
                return len(records) - n
            try:
                for event_type, body in events(record):
                    self._post(event_type, record, body)
            except (OSError, http.client.HTTPException, ServeError) as exc:
                self._close()
                return self.backoff.failed(exc, len(records) - n)
            self.backoff.succeeded()
            self.written += 1
        return 0

    def _post(self, event_type: str, record: dict, body: bytes) -> None:
        if self.conn is None:
            kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self.conn = kind(self.host, self.port, timeout=self.timeout)
        self.conn.request("POST", self.path, body=body, headers=headers(event_type, record))
        response = self.conn.getresponse()
        response.read()
        if response.status >= 300:
            raise ServeError(f"the payload endpoint answered {response.status} {response.reason}")

    def _close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def tick(self) -> None:
        return None

    def flush(self) -> None:
        self._close()


def events(record: dict) -> list[tuple[str, bytes]]:
    """The (type, body) of a record's events: the request's input (when logged) and the response."""
    found = []
    if "input" in record:
        found.append((EVENT_TYPES[0], json.dumps(record["input"]).encode()))
    answer = {"error": record["error"]} if "error" in record else record.get("output")
    found.append((EVENT_TYPES[1], json.dumps(answer).encode()))
    return found


def headers(event_type: str, record: dict) -> dict[str, str]:
    """The binary-mode headers: required attributes, ``ce-time``, and the record's fields as extensions."""
    values = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": record["request_id"],
        "ce-source": f"/vci/{record['environment']}",
        "ce-type": event_type,
        "ce-time": record["time"],
    }
    for key, name in EXTENSIONS.items():
        if record.get(key) is not None:
            values[f"ce-{name}"] = str(record[key])
    return values


class S3Sink:
    """Records buffered and sent as one gzip JSON Lines object per partition every N records or T seconds."""

    def __init__(self, url: str, settings: PayloadSettings):
        import boto3  # preflight checked that the image has it
        from botocore.config import Config

        parts = urlsplit(url)
        self.bucket, self.prefix, self.settings = parts.netloc, parts.path.strip("/"), settings
        config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=10)
        endpoint = os.environ.get("VCI_S3_ENDPOINT_URL") or None
        self.client = boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)
        self.buffer: list[tuple[float, str, float, str]] = []  # (when buffered, partition, record time, line)
        self.sequence, self.backoff, self.written = 0, Backoff(), 0
        self.partitions: dict[str, str] = {}

    @property
    def down(self) -> bool:
        return self.backoff.down

    def write(self, records: list[dict]) -> int:
        """Buffer ``records`` (as the lines they will be); send each full batch of ``batch_records`` at once."""
        now = time.monotonic()
        for record in records:
            at = datetime.fromisoformat(record["time"]).timestamp()
            self.buffer.append((now, self._partition(record["time"][:13], at), at, line(record)))
        lost = 0
        while len(self.buffer) >= self.settings.batch_records:
            lost += self.flush(self.settings.batch_records)
        return lost

    def _partition(self, hour: str, at: float) -> str:
        """The partition of a record of ``hour`` (its time's first 13 characters), made once per hour."""
        if hour not in self.partitions:
            self.partitions = {hour: partition(self.prefix, self.settings.environment, at)}
        return self.partitions[hour]

    def tick(self) -> int:
        if self.buffer and time.monotonic() - self.buffer[0][0] >= self.settings.batch_seconds:
            return self.flush()
        return 0

    def flush(self, count: int | None = None) -> int:
        """Send what is buffered (the first ``count`` records), one object per hour it covers; return the
        records lost."""
        taken, self.buffer = self.buffer[:count], self.buffer[len(self.buffer) if count is None else count :]
        if not taken or self.backoff.down:
            return len(taken)
        try:
            for key, lines in self._objects(taken).items():
                body = gzip.compress("".join(lines).encode(), compresslevel=6)
                self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson", ContentEncoding="gzip"
                )
        except Exception as exc:  # botocore's errors, connection errors alike: the batch is lost
            return self.backoff.failed(exc, len(taken))
        self.backoff.succeeded()
        self.written += len(taken)
        return 0

    def _objects(self, taken: list[tuple[float, str, float, str]]) -> dict[str, list[str]]:
        """Object key -> its lines: the records grouped by their hour's partition, in order."""
        parts: dict[str, tuple[float, list[str]]] = {}
        for _, prefix, at, text in taken:
            parts.setdefault(prefix, (at, []))[1].append(text)
        objects = {}
        for prefix, (first, lines) in parts.items():
            self.sequence += 1
            objects[prefix + object_name(first, self.sequence)] = lines
        return objects
