"""Shadow traffic: a live server copies a fraction of its answered /predict requests to a candidate and compares.

The release that runs a shadow (vci.release.shadow) writes a small JSON file, ``VCI_SHADOW_CONFIG``:
``{"url", "fraction", "compare", "release_id"}``; the server rereads it when it changes (a watcher thread,
every 0.2 s) and deletes nothing. Mirroring is off the request path: after a live request is answered,
``offer`` puts a copy on a bounded queue (when it is full the copy is dropped and counted) and returns; a
background thread sends each copy to the candidate's ``/predict``, compares the two answers with
:func:`agree` and counts. A candidate that answers an error where production answered counts as a
disagreement; one that cannot be reached, as an error (no comparison). A slow, failing or absent
candidate only fills the queue: live requests never wait for it and never fail because of it. Every
second (and when the shadow ends) the counts are
written beside the config as ``<config>.<pid>.stats.json``, one file per server process, which the
release sums; where that directory is read-only (a pod's mounted ConfigMap: vci.deploy.kubeshadow) no file
is written, and the counts are read from the server's ``/metrics`` instead (``vci_shadow_*``, see
:meth:`Mirror.render`), through the API server's pod proxy.

Comparisons (``compare``): ``exact`` (equal JSON), ``tolerance:T`` (numbers within T, the rest equal),
``same_class`` (the same arg-max of each score vector, or the same label), ``top_k:K`` (the candidate's
arg-max among production's K highest scores).
"""

from __future__ import annotations

import json
import os
import queue
import random
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from ..files import write_replacing
from . import logs
from .metrics import escape_label

SHADOW_CONFIG = "VCI_SHADOW_CONFIG"  # the file a release writes to start (and removes to end) a shadow
QUEUE_SIZE = 1000
POLL = 0.2
KEPT_DISAGREEMENTS = 5
SHADOW_SERIES = {  # vci_shadow_<key>_total: what each counts
    "compared": "Mirrored requests whose answers were compared, by the shadow's release.",
    "disagreed": "Compared answers of the shadow that disagreed with this server's.",
    "errors": "Mirrored requests the shadow could not be reached for (not compared).",
    "dropped": "Copies dropped because the mirror's queue was full.",
    "seconds": "Seconds the shadow took to answer the compared requests, summed.",
}


def agree(live, shadow, compare: str) -> bool:
    """Whether the candidate's answer ``shadow`` agrees with production's ``live`` under ``compare``."""
    mode, _, arg = compare.partition(":")
    if mode == "exact":
        return live == shadow
    if mode == "tolerance":
        return _close(live, shadow, float(arg or 0))
    if mode == "same_class":
        return _classes(live) == _classes(shadow)
    if mode == "top_k":
        return _in_top_k(live, shadow, int(arg or 1))
    raise ValueError(f"unknown comparison {compare!r}")


def _close(a, b, tolerance: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not (_number(a) and _number(b)):
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(_close(x, y, tolerance) for x, y in zip(a, b, strict=True))
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(_close(a[k], b[k], tolerance) for k in a)
        return a == b
    return abs(a - b) <= tolerance


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _classes(value):
    """A label stays itself; a vector of scores becomes its arg-max; a list of those, each."""
    if isinstance(value, list) and value and all(_number(v) for v in value):
        return max(range(len(value)), key=value.__getitem__)
    if isinstance(value, list):
        return [_classes(v) for v in value]
    return value


def _in_top_k(live, shadow, k: int) -> bool:
    if isinstance(live, list) and live and all(_number(v) for v in live) and isinstance(shadow, list):
        top = sorted(range(len(live)), key=live.__getitem__, reverse=True)[:k]
        return len(shadow) == len(live) and _classes(shadow) in top
    if isinstance(live, list) and isinstance(shadow, list):
        return len(live) == len(shadow) and all(_in_top_k(a, b, k) for a, b in zip(live, shadow, strict=True))
    return live == shadow


class Refused(Exception):
    """The candidate answered a mirrored request with an error status (where production answered 200)."""

    def __init__(self, status: int):
        super().__init__(f"the shadow answered {status}")
        self.status = status


class Mirror:
    """The server's side of a shadow: the config it watches, the queue, the sender and the counts."""

    def __init__(self, config_path: str | os.PathLike, tokens=None, payloads=None):
        self.config_path, self.tokens = Path(config_path), tokens  # tokens: the server's vci.serve.auth.Tokens
        self.payloads = payloads  # the server's vci.serve.payloads.PayloadLog: each comparison is logged there
        self.stats_path = self.config_path.with_name(f"{self.config_path.name}.{os.getpid()}.stats.json")
        self.writes_stats = True  # until the directory refuses a write (a mounted ConfigMap is read-only)
        self.config: dict | None = None
        self._seen: tuple | None = None
        self.queue: queue.Queue = queue.Queue(QUEUE_SIZE)
        self.counts = self._zero()
        self._lock = threading.Lock()
        for target in (self._watch, self._send_all):
            threading.Thread(target=target, name=f"vci-shadow-{target.__name__}", daemon=True).start()

    @staticmethod
    def _zero(release_id=None) -> dict:
        return {"release_id": release_id, "compared": 0, "disagreed": 0, "errors": 0, "dropped": 0,
                "shadow_seconds": 0.0, "disagreements": []}  # fmt: skip

    def offer(self, body, answer: bytes, traceparent: str | None = None, tracestate: str | None = None) -> None:
        """After a live request was answered: maybe queue a copy for the candidate (never blocks), with the
        request's W3C ``traceparent`` and ``tracestate`` (vci.serve.tracing) passed on."""
        config = self.config
        if config is None or random.random() >= float(config.get("fraction", 1.0)):
            return
        try:
            self.queue.put_nowait((config, body, answer, traceparent, tracestate))
        except queue.Full:
            with self._lock:
                self.counts["dropped"] += 1

    def _watch(self) -> None:
        last_write = 0.0
        while True:
            self._reload()
            if time.monotonic() - last_write >= 1.0:
                self._write_stats()
                last_write = time.monotonic()
            time.sleep(POLL)

    def _reload(self) -> None:
        try:
            st = self.config_path.stat()
            seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            if self.config is not None:
                self.config = None
                self._write_stats()
            self._seen = None
            return
        if seen == self._seen:
            return
        self._seen = seen
        try:
            config = json.loads(self.config_path.read_text())
        except (OSError, ValueError):
            return  # half-written: read again next time
        with self._lock:
            if (self.config or {}).get("release_id") != config.get("release_id"):
                self.counts = self._zero(config.get("release_id"))
        self.config = config

    def _send_all(self) -> None:
        connections: dict[str, object] = {}
        while True:
            config, body, answer, traceparent, tracestate = self.queue.get()
            started = time.perf_counter()
            try:
                shadow = self._send(connections, config["url"], body, traceparent, tracestate)
                agreed = agree(json.loads(answer), shadow, config.get("compare", "exact"))
            except Refused as refused:  # production answered, the candidate refused: they disagree
                shadow, agreed = {"status": refused.status}, False
            except Exception as exc:  # noqa: BLE001 - an unreachable candidate is counted, never raised
                connections.pop(config["url"], None)
                self._count(config, error=type(exc).__name__)
                continue
            seconds = time.perf_counter() - started
            self._count(config, agreed=agreed, seconds=seconds, example=(body, answer, shadow))
            if self.payloads is not None:  # a record marked shadow, with both answers (vci predictions shows it)
                self.payloads.offer_shadow(body, answer, shadow, agreed, config.get("release_id"), seconds, traceparent)

    def _send(self, connections: dict, url: str, body: bytes, traceparent=None, tracestate=None) -> object:
        """POST ``body`` to the candidate's /predict (with this server's own token when it has one: the
        candidate runs with the same auth setting) and return its JSON answer."""
        import http.client

        parts = urlsplit(url)
        conn = connections.get(url)
        if conn is None:
            conn = connections[url] = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        headers = {"Content-Type": "application/json"}
        tokens = self.tokens.current() if self.tokens is not None else []
        if tokens:
            headers["Authorization"] = "Bearer " + tokens[0].decode()
        if traceparent:
            headers["traceparent"] = traceparent
            if tracestate:
                headers["tracestate"] = tracestate
        conn.request("POST", "/predict", body=body, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        if resp.status != 200:
            raise Refused(resp.status)
        return json.loads(payload)

    def _count(self, config, *, agreed=None, error=None, seconds=0.0, example=None) -> None:
        with self._lock:
            if config.get("release_id") != self.counts["release_id"]:
                return  # a copy queued for a shadow that has ended
            if error is not None:
                self.counts["errors"] += 1
                return
            self.counts["compared"] += 1
            self.counts["shadow_seconds"] += seconds
            if not agreed:
                self.counts["disagreed"] += 1
                kept = self.counts["disagreements"]
                if len(kept) < KEPT_DISAGREEMENTS and example is not None:
                    body, answer, shadow = example
                    kept.append({"input": json.loads(body), "live": json.loads(answer), "shadow": shadow})

    def _write_stats(self) -> None:
        with self._lock:
            counts = dict(self.counts)
        if counts["release_id"] is None or not self.writes_stats:
            return
        try:
            write_replacing(self.stats_path, json.dumps(counts, default=str).encode())
        except OSError as exc:  # read-only (a pod's ConfigMap mount): the counts are in /metrics only
            self.writes_stats = False
            logs.event("shadow_stats_not_written", directory=str(self.stats_path.parent), error=exc.strerror)

    def render(self) -> list[str]:
        """The counts of the shadow running now as Prometheus lines (none before the first shadow), labelled
        with the shadow's release: ``vci_shadow_{compared,disagreed,errors,dropped}_total`` and
        ``vci_shadow_seconds_total`` (the candidate's answer time, summed over the compared requests)."""
        with self._lock:
            counts = dict(self.counts)
        if counts["release_id"] is None:
            return []
        label = f'{{shadow_release="{escape_label(str(counts["release_id"]))}"}}'
        lines = []
        for key, help_text in SHADOW_SERIES.items():
            value = f"{counts['shadow_seconds']:.6f}" if key == "seconds" else str(counts[key])
            name = f"vci_shadow_{key}_total"
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name}{label} {value}"]
        return lines
