"""Live charts of a deployment: its ``/metrics`` scraped by the app, turned into rates, drawn as SVG.

The app scrapes an environment's servers when its page is viewed (at most once a second; the page asks
again every few seconds): a local server through ``target.client()``, a cluster's pods one by one through
the API server's pod proxy (``KubeTarget.scrape``). Each server's scrape is differenced against its one
before with Prometheus's reset rule (``vci.release.canary.increase``), and the servers' increases added,
giving per-interval request rate, error rate, p50/p90 latency and mean batch size. Input drift is drawn
from each scrape as it is: per input feature, the servers' windowed mean (``vci_feature_window_mean``,
weighted by ``vci_feature_window_count``) as a line in the band between their window's min and max (see
vci.serve.drift). The charts are SVG drawn here from numbers, so the page needs no script at all.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass

from markupsafe import Markup, escape

from ..deploy import target_for
from ..errors import RemoteError, VciError
from ..release.canary import increase, parse_series, quantile, snapshot

KEEP = 120  # scrapes kept per environment
MIN_INTERVAL = 1.0  # seconds between two scrapes of one environment
_BATCH = re.compile(r"^vci_batch_size_(sum|count)(?:\{[^}]*\})?\s+(\S+)", re.MULTILINE)
_WINDOW = re.compile(r'^vci_feature_window_(count|mean|min|max)\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\}\s+(\S+)', re.MULTILINE)
_FEATURE = re.compile(r'feature="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Point:
    """What one interval between two scrapes saw."""

    at: float  # epoch seconds of the later scrape
    rate: float  # requests per second on the model routes
    error_rate: float | None  # share of 4xx/5xx answers (None: no requests)
    p50_ms: float | None
    p90_ms: float | None
    batch_size: float | None  # mean requests per batch_predict call (None: batching off or no batch)


@dataclass(frozen=True)
class DriftPoint:
    """One input feature's window as one scrape of all the servers saw it."""

    at: float  # epoch seconds of the scrape
    count: float  # values seen in the window
    mean: float | None  # None: no value in the window
    low: float | None
    high: float | None


def batch_totals(text: str) -> tuple[float, float]:
    """``(sum, count)`` of the server's batch-size histogram (0, 0 when batching is off)."""
    found = {kind: float(value) for kind, value in _BATCH.findall(text)}
    return found.get("sum", 0.0), found.get("count", 0.0)


Scrape = tuple[float, dict[str, str]]  # (epoch seconds, {server: exposition text})


def interval(before: Scrape, after: Scrape) -> Point:
    """The Point between two scrapes of an environment's servers (pure): each server's counters are
    differenced on their own (a pod seen only in the later scrape is not counted yet), then added."""
    seconds = max(after[0] - before[0], 1e-9)
    gained: dict = {}
    batches = items = 0.0
    for server, text in after[1].items():
        if server not in before[1]:
            continue
        for key, value in increase(parse_series(before[1][server]), parse_series(text)).items():
            gained[key] = gained.get(key, 0.0) + value
        (sum0, count0), (sum1, count1) = batch_totals(before[1][server]), batch_totals(text)
        more = (count1, sum1) if count1 < count0 else (count1 - count0, sum1 - sum0)
        batches, items = batches + more[0], items + more[1]
    step = snapshot(gained)
    p50, p90 = quantile(0.5, step.buckets), quantile(0.9, step.buckets)
    return Point(
        at=after[0],
        rate=step.total / seconds,
        error_rate=step.errors / step.total if step.total else None,
        p50_ms=None if p50 is None else p50 * 1000,
        p90_ms=None if p90 is None else p90 * 1000,
        batch_size=items / batches if batches else None,
    )


def feature_windows(text: str) -> dict[str, dict[str, float]]:
    """``{feature: {count, mean, min, max}}`` of one server's drift series (a stat the server left out
    because its window is empty is absent)."""
    found: dict[str, dict[str, float]] = {}
    for line in _WINDOW.finditer(text):
        feature = _FEATURE.search(line.group(0))
        if feature is not None:
            name = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), feature.group(1))
            found.setdefault(name, {})[line.group(1)] = float(line.group(2))
    return found


def drift_points(scrapes: list[Scrape]) -> dict[str, list[DriftPoint]]:
    """Per input feature, a DriftPoint per scrape: the servers' windows combined (counts added, means
    weighted by count, the least min and the greatest max). Pure."""
    series: dict[str, list[DriftPoint]] = {}
    for at, texts in scrapes:
        merged: dict[str, list[dict[str, float]]] = {}
        for text in texts.values():
            for feature, window in feature_windows(text).items():
                merged.setdefault(feature, []).append(window)
        for feature, windows in sorted(merged.items()):
            seen = [w for w in windows if w.get("count") and "mean" in w]
            count = sum(w["count"] for w in seen)
            mean = sum(w["mean"] * w["count"] for w in seen) / count if count else None
            low = min((w["min"] for w in seen if "min" in w), default=None)
            high = max((w["max"] for w in seen if "max" in w), default=None)
            series.setdefault(feature, []).append(DriftPoint(at, count, mean, low, high))
    return series


class Sampler:
    """The recent scrapes of each environment's server, and the Points between them."""

    def __init__(self, settings, keep: int = KEEP, min_interval: float = MIN_INTERVAL):
        self.settings, self.keep, self.min_interval = settings, keep, min_interval
        self._scrapes: dict[str, deque[Scrape]] = {}
        self._lock = threading.Lock()

    def scrape(self, env: str) -> str | None:
        """Scrape ``env`` now unless it was scraped within ``min_interval``; the reason when it cannot be."""
        with self._lock:
            kept = self._scrapes.setdefault(env, deque(maxlen=self.keep))
            if kept and time.time() - kept[-1][0] < self.min_interval:
                return None
        try:
            texts = read_metrics(self.settings, env)
        except VciError as exc:
            return exc.message
        if not texts:
            return f"no server of {env} answered /metrics"
        with self._lock:
            kept.append((time.time(), texts))
        return None

    def points(self, env: str) -> list[Point]:
        kept = self.scrapes(env)
        return [interval(a, b) for a, b in zip(kept, kept[1:])]  # noqa: B905 (one shorter by design)

    def scrapes(self, env: str) -> list[Scrape]:
        with self._lock:
            return list(self._scrapes.get(env, ()))


def read_metrics(settings, env: str, timeout: float = 3.0) -> dict[str, str]:
    """``{server: /metrics text}`` of ``env``: each stable pod's through the API server's pod proxy on a
    cluster (the service proxy would answer from any pod, mixing their counters), else the local server's,
    reached as ``vci predict`` reaches it."""
    target = target_for(settings, env)
    if hasattr(target, "scrape"):
        return target.scrape("stable")
    client = target.client(timeout=timeout, deadline=timeout)
    try:
        response = client.session.get(client.url + "/metrics", timeout=timeout)
    except OSError as exc:
        raise RemoteError(f"{env}'s /metrics did not answer: {type(exc).__name__}") from None
    finally:
        client.close()
    if response.status_code != 200:
        raise RemoteError(f"{env}'s /metrics answered {response.status_code}")
    return {client.url: response.text}


def canary_figures(scrapes: dict[str, str]) -> dict | None:
    """What a canary's servers counted since they started (one scrape each): ``{requests, error_rate,
    p90_ms}``, the figures its gate judges; None without a scrape."""
    if not scrapes:
        return None
    series: dict = {}
    for text in scrapes.values():
        for key, value in parse_series(text).items():
            series[key] = series.get(key, 0.0) + value
    seen = snapshot(series)
    p90 = quantile(0.9, seen.buckets)
    return {
        "requests": seen.total,
        "error_rate": seen.errors / seen.total if seen.total else None,
        "p90_ms": None if p90 is None else p90 * 1000,
    }


def scrape_canary(target, record: dict) -> dict[str, str]:
    """The canary's ``/metrics``: each pod's on a cluster (``target.scrape``), else its server process's."""
    if hasattr(target, "scrape"):
        return target.scrape("canary")
    import requests

    try:
        return {"canary": requests.get(record["url"] + "/metrics", timeout=3).text} if record.get("url") else {}
    except requests.RequestException:
        return {}


CHARTS = (  # (Point attribute, title, unit)
    ("rate", "requests", "req/s"),
    ("error_rate", "errors", "share"),
    ("p50_ms", "p50 latency", "ms"),
    ("p90_ms", "p90 latency", "ms"),
    ("batch_size", "batch size", "requests"),
)


def line_chart(
    title: str,
    unit: str,
    values: list[tuple[float, float | None]],
    width=320,
    height=120,
    band: list[tuple[float, float, float]] | None = None,
) -> Markup:
    """An SVG line chart of ``(time, value)`` (None: a gap), labelled; scaled from 0 to its maximum, or
    with a ``band`` of ``(time, low, high)`` drawn behind the line, from the least low to the greatest high."""
    pad, known, band = 28, [(t, v) for t, v in values if v is not None], band or []
    head = f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img"'
    label = escape(f"{title} ({unit})")
    parts = [f'{head} aria-label="{label}"><title>{label}</title>']
    parts.append(f'<text x="4" y="14" class="chart-title">{label}</text>')
    parts.append(f'<line x1="{pad}" y1="{height - 16}" x2="{width - 4}" y2="{height - 16}" class="axis"/>')
    if not known:
        parts.append(f'<text x="{pad}" y="{height / 2:.0f}" class="chart-empty">no data yet</text></svg>')
        return Markup("".join(parts))
    t0, t1 = values[0][0], max(values[-1][0], values[0][0] + 1)
    low = min([v for _, v in known] + [b[1] for b in band]) if band else 0.0
    top = max([v for _, v in known] + [b[2] for b in band]) if band else (max(v for _, v in known) or 1.0)
    span = (top - low) or 1.0

    def x(t: float) -> float:
        return pad + (t - t0) / (t1 - t0) * (width - pad - 8)

    def y(v: float) -> float:
        return height - 16 - (v - low) / span * (height - 40)

    if band:
        edge = [(x(t), y(hi)) for t, _, hi in band] + [(x(t), y(lo)) for t, lo, _ in reversed(band)]
        parts.append(f'<polygon points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in edge)}" class="band"/>')
        parts.append(f'<text x="4" y="{height - 20}" class="chart-min">{_figure(low)}</text>')
    xs, ys = [x(t) for t, _ in known], [y(v) for _, v in known]
    path = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys, strict=True))
    parts.append(f'<text x="4" y="30" class="chart-max">{_figure(top)}</text>')
    parts.append(f'<polyline points="{path}" class="series"/>')
    parts.append(f'<circle cx="{xs[-1]:.1f}" cy="{ys[-1]:.1f}" r="2.5" class="dot"/>')  # the latest, seen alone too
    parts.append(f'<text x="{width - 4}" y="14" text-anchor="end" class="chart-now">now {_figure(known[-1][1])}</text>')
    return Markup("".join(parts) + "</svg>")


def drift_charts(series: dict[str, list[DriftPoint]]) -> list[Markup]:
    """One chart per input feature: its windowed mean, in the band of the window's min and max."""
    charts = []
    for feature, points in series.items():
        band = [(p.at, p.low, p.high) for p in points if p.low is not None and p.high is not None]
        mean = [(p.at, p.mean) for p in points]
        charts.append(line_chart(f"drift: {feature}", "window mean, min-max", mean, band=band))
    return charts


def charts_for(points: list[Point]) -> list[Markup]:
    """One chart per figure of ``CHARTS`` over ``points``."""
    return [line_chart(title, unit, [(p.at, getattr(p, name)) for p in points]) for name, title, unit in CHARTS]


def _figure(value: float) -> str:
    return f"{value:.3g}"
