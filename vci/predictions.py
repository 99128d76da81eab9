"""Payload records read back from an environment's file or S3 sink, newest first, joined to the ledger's releases.

The server writes them (vci.serve.payloads, vci.serve.sinks): a file holds JSON lines; S3 holds gzip
JSON Lines objects under ``PREFIX/ENV/YYYY/MM/DD/HH/`` whose names start with their first record's time,
so a ``since`` reads only the hours it covers and the newest objects are read first. The stdout and HTTP
sinks hand records to another system, where they are read: vci refuses to guess.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from .config import Environment, Settings
from .errors import ConfigError, NotFoundError
from .ledger import Ledger
from .serve.payloads import environment_prefix, partition

RELEASE_FIELDS = ("action", "outcome", "digest", "run_id", "strategy", "when")  # what a record's release adds


@dataclass
class Predictions:
    """What ``vci predictions`` prints: the records, newest first, and the ledger's releases they name."""

    environment: str
    source: str
    records: list[dict]
    releases: dict[str, dict] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "environment": self.environment,
            "source": self.source,
            "records": self.records,
            "releases": self.releases,
        }


def read_predictions(settings: Settings, env_name: str | None, *, since: float | None, limit: int) -> Predictions:
    """The newest ``limit`` records of the environment (those after ``since``, epoch seconds, if given)."""
    env = settings.environment(env_name)
    sink = _sink_of(env)
    if sink.startswith("file:"):
        records = _from_file(Path(sink[len("file:") :]), env.name, since)
    else:
        records = _from_s3(sink, env.name, since, limit)
    records = sorted(records, key=lambda r: r.get("time", ""), reverse=True)[:limit]
    return Predictions(env.name, sink, records, _releases(settings, env.name, records))


def _sink_of(env: Environment) -> str:
    sink = env.payload_log.get("sink")
    if not sink:
        raise ConfigError(
            f"environment {env.name!r} logs no payloads",
            hint=f"set environments.{env.name}.payload_log: {{sink: s3://BUCKET/PREFIX}} (or file:/PATH) in vci.yaml",
        )
    if not sink.startswith(("file:", "s3://")):
        raise ConfigError(
            f"environment {env.name!r} sends its payload records to {sink.split('?')[0]}, which vci cannot read back",
            hint="read them where that sink delivers them, or log to file:/PATH or s3://BUCKET/PREFIX",
        )
    return sink


def _from_file(path: Path, env: str, since: float | None) -> list[dict]:
    """The file's records of ``env`` after ``since`` (a line that is not a JSON record, say a torn last
    line, is skipped)."""
    if not path.exists():
        raise NotFoundError(f"no payload log at {path}", hint="the server creates it with its first prediction")
    found = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("environment") == env and _after(record, since):
                found.append(record)
    return found


def _after(record: dict, since: float | None) -> bool:
    if since is None:
        return True
    try:
        return datetime.fromisoformat(record["time"]).timestamp() >= since
    except (KeyError, TypeError, ValueError):
        return False


def _from_s3(url: str, env: str, since: float | None, limit: int) -> list[dict]:
    """Read objects newest first until ``limit`` records are in hand (then the sort settles the order)."""
    import boto3

    parts = urlsplit(url)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    client = boto3.session.Session().client("s3", endpoint_url=os.environ.get("VCI_S3_ENDPOINT_URL") or None)
    found: list[dict] = []
    for key in _keys_newest_first(client, bucket, prefix, env, since):
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        found += [r for r in map(json.loads, gzip.decompress(body).decode().splitlines()) if _after(r, since)]
        if len(found) >= limit:
            break
    return found


def _keys_newest_first(client, bucket: str, prefix: str, env: str, since: float | None):
    """Object keys of ``env``, newest first: per hour from now back to ``since``, or all of them."""
    if since is None:
        yield from sorted(_list(client, bucket, environment_prefix(prefix, env)))[::-1]
        return
    hour = time.time()
    while hour >= since - 3600:
        yield from sorted(_list(client, bucket, partition(prefix, env, hour)))[::-1]
        hour -= 3600


def _list(client, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def _releases(settings: Settings, env: str, records: list[dict]) -> dict[str, dict]:
    """The ledger's record of each release the records name (those the ledger has)."""
    ids = sorted({r["release_id"] for r in records if r.get("release_id")})
    if not ids:
        return {}
    ledger, found = Ledger.for_settings(settings), {}
    for release_id in ids:
        try:
            release = ledger.get(env, release_id).to_json()
        except NotFoundError:
            continue
        found[release_id] = {key: release.get(key) for key in RELEASE_FIELDS}
    return found
