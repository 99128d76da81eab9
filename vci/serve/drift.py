"""Input and output drift in Prometheus: per numeric feature a windowed count, mean, min and max and a histogram.

The features and the histogram bounds are learnt, when the model loads, from the run manifest's logged
``examples`` (and the numeric properties of its input ``schemas``, with their ``minimum``/``maximum``): a
feature is a numeric key of an input object, or a position of an input row (``"0"``, ``"1"``...). An
input is a row, an object, or a list of rows or objects (each one observed); a feature the examples never
showed is not counted, so a client cannot grow the series. The bounds span the examples' range in
``BINS`` equal steps: a value beyond what the model was shown lands in the first or the ``+Inf`` bucket.

The output's distribution likewise: counts per class for a classifier (a label that is a string, an
integer or a boolean, at most ``MAX_CLASSES`` of them, then ``other``), a histogram for a regressor (a
float; bounds from the examples' ``expected_outputs`` when they are numbers, else ``DEFAULT_OUTPUT_BOUNDS``).

Off the hot path, and a sample: a prediction appends its decoded input and result to a deque (no lock,
no parsing: the JSON was decoded for the model already) until it holds ``SAMPLE``; a background thread
folds the deque into the statistics every ``POLL`` seconds, ``CHUNK`` items between two releases of the
GIL (as vci.serve.payloads does). So at most ``SAMPLE / POLL`` predictions a second are counted (the first
of each poll); the others only in ``vci_drift_skipped_total``: folding every prediction of a fast model
cost it 7% of its throughput (benchmarks/drift.py). The window is ``WINDOW`` seconds in ``SLOTS`` slots:
the windowed series cover the last full slots and the current one.

Exposed series (with the server's ``release`` and ``track`` labels, see vci.serve.metrics)::

    vci_feature_window_count{feature}    gauge: values seen in the window
    vci_feature_window_mean{feature}     gauge: their mean (absent while the window is empty)
    vci_feature_window_min{feature}, vci_feature_window_max{feature}
    vci_feature_value_bucket{feature,le}, _sum, _count    histogram since start, bounds from the examples
    vci_prediction_class_total{class}    counter: predictions per class (classifiers)
    vci_prediction_value_bucket{le}, _sum, _count         histogram of predicted values (regressors)
    vci_drift_skipped_total              counter: predictions left out of the sample
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable

from . import logs
from .metrics import Histogram, escape_label

POLL = 0.5  # seconds between the folding thread's looks at the deque
CHUNK = 64  # items folded between two releases of the GIL
SAMPLE = 500  # predictions taken per poll at most (1,000 a second): the series describe a sample
WINDOW = 300.0  # seconds the windowed series cover
SLOTS = 10
BINS = 8
MAX_FEATURES = 64
MAX_CLASSES = 50
CLASSES = "vci_prediction_class_total"
DEFAULT_OUTPUT_BOUNDS = (-100.0, -10.0, -1.0, -0.1, 0.0, 0.1, 1.0, 10.0, 100.0, 1000.0)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def rows(value) -> list:
    """The rows of one input: itself (an object or a row of numbers), or the items of a list of rows."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, (list, dict)) for item in value):
        return value
    return [value] if isinstance(value, list) else []


def features_of(row) -> Iterable[tuple[str, float]]:
    """The (feature, value) pairs of one row: its numeric keys, or its numeric positions."""
    pairs = row.items() if isinstance(row, dict) else enumerate(row) if isinstance(row, list) else ()
    return ((str(key), value) for key, value in pairs if _is_number(value))


def outputs(result) -> list:
    return result if isinstance(result, list) else [result]


def bounds_between(low: float, high: float) -> tuple[float, ...]:
    """``BINS + 1`` bounds from ``low`` to ``high`` (one bound when they are equal)."""
    if high <= low:
        return (float(low),)
    step = (high - low) / BINS
    return tuple(round(low + i * step, 12) for i in range(BINS + 1))


class Tensors:
    """A V2 request's inputs, queued as they came (the conversion is the folding thread's work)."""

    __slots__ = ("inputs",)

    def __init__(self, inputs):
        self.inputs = inputs


def tensor_rows(inputs) -> list:
    """A V2 request's inputs as rows: an ``[N, F]`` array's rows (or an ``[F]`` array as one row); several
    ``[N]`` (or ``[N, 1]``) arrays as N objects keyed by input name, so their features are the names."""
    if isinstance(inputs, dict) and len(inputs) == 1:
        inputs = next(iter(inputs.values()))
    if not isinstance(inputs, dict):
        plain = inputs.tolist() if hasattr(inputs, "tolist") else inputs
        return rows(plain)
    columns = {}
    for name, array in inputs.items():
        if getattr(array, "ndim", 0) in (1, 2) and array.size == len(array):
            columns[str(name)] = array.reshape(-1).tolist()
    count = min((len(column) for column in columns.values()), default=0)
    return [{name: column[i] for name, column in columns.items()} for i in range(count)]


def tensor_outputs(result) -> list:
    """The model's V2 result as drift outputs: the one output's values (an ``[N, 1]`` array as N values);
    nothing for several outputs or values numpy cannot make an array of."""
    import numpy  # there whenever V2 requests are: vci.serve.v2 decodes their tensors with it

    if isinstance(result, dict):
        if len(result) != 1:
            return []
        result = next(iter(result.values()))
    try:
        array = numpy.asarray(result)
    except ValueError:  # ragged
        return []
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.reshape(-1)
    values = array.tolist()
    return values if isinstance(values, list) else [values]


def learn_features(manifest: dict) -> dict[str, tuple[float, ...]]:
    """Feature name -> histogram bounds, from the manifest's examples and its input schema's properties."""
    ranges: dict[str, list[float]] = {}
    for value in ((manifest.get("examples") or {}).get("inputs")) or []:
        for row in rows(value):
            for name, number in features_of(row):
                span = ranges.setdefault(name, [number, number])
                span[0], span[1] = min(span[0], number), max(span[1], number)
    for name, prop in _numeric_properties(manifest):
        span = ranges.setdefault(name, [math.inf, -math.inf])
        if _is_number(prop.get("minimum")):
            span[0] = min(span[0], prop["minimum"])
        if _is_number(prop.get("maximum")):
            span[1] = max(span[1], prop["maximum"])
    learnt = {name: bounds_between(*span) for name, span in sorted(ranges.items()) if math.isfinite(span[0] - span[1])}
    return dict(list(learnt.items())[:MAX_FEATURES])


def _numeric_properties(manifest: dict) -> list[tuple[str, dict]]:
    """The (name, schema) of the input schema's numeric properties (an object schema), else none."""
    schema = (manifest.get("schemas") or {}).get("input")
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return []
    numeric = ("number", "integer")
    return [(str(k), p) for k, p in properties.items() if isinstance(p, dict) and p.get("type") in numeric]


def learn_output(manifest: dict) -> tuple[float, ...] | None:
    """Histogram bounds for a regressor's output from the examples' expected outputs, or None."""
    expected = (manifest.get("examples") or {}).get("expected_outputs") or []
    values = [v for result in expected for v in outputs(result) if isinstance(v, float) and math.isfinite(v)]
    return bounds_between(min(values), max(values)) if values else None


class Stats:
    """One feature's (or the output's) histogram since start and its windowed count, sum, min and max."""

    __slots__ = ("histogram", "slots")

    def __init__(self, bounds: tuple[float, ...]):
        self.histogram = Histogram(bounds)
        self.slots: dict[int, list[float]] = {}  # slot number -> [count, sum, min, max]

    def observe(self, value: float, slot: int) -> None:
        self.histogram.observe(value)
        window = self.slots.get(slot)
        if window is None:
            self.slots[slot] = [1, value, value, value]
        else:
            window[0] += 1
            window[1] += value
            if value < window[2]:
                window[2] = value
            elif value > window[3]:
                window[3] = value

    def window(self, oldest: int) -> tuple[int, float, float, float] | None:
        """(count, mean, min, max) over the slots from ``oldest`` on, or None when empty; drops older slots."""
        for slot in [s for s in self.slots if s < oldest]:
            del self.slots[slot]
        kept = list(self.slots.values())
        count = int(sum(w[0] for w in kept))
        if not count:
            return None
        return count, sum(w[1] for w in kept) / count, min(w[2] for w in kept), max(w[3] for w in kept)


class Drift:
    """The drift statistics of one server process, fed by :meth:`offer` and folded by a background thread."""

    def __init__(self, features: dict[str, tuple[float, ...]], output_bounds: tuple[float, ...] | None = None):
        self.features = {name: Stats(bounds) for name, bounds in features.items()}
        self.output = Stats(output_bounds or DEFAULT_OUTPUT_BOUNDS)
        self.classes: dict[str, int] = {}
        self.skipped = 0
        self.pending: deque = deque()
        self.lock = threading.Lock()  # between the folding thread and a scrape, never taken by a request
        self.clock = time.monotonic
        self._thread: threading.Thread | None = None

    @classmethod
    def from_manifest(cls, manifest: dict) -> Drift:
        drift = cls(learn_features(manifest), learn_output(manifest))
        logs.event("drift", features=sorted(drift.features))
        return drift

    def offer(self, data, result) -> None:
        """On the request path: queue one answered prediction, or count it skipped once this poll's sample
        is full."""
        if len(self.pending) < SAMPLE:
            self.pending.append((data, result))
        else:
            self.skipped += 1

    def offer_tensors(self, inputs, result) -> None:
        """A V2 infer call: its numpy inputs (one array, or ``{name: array}``) and the model's result, turned
        into rows and outputs by the folding thread (:func:`tensor_rows`, :func:`tensor_outputs`)."""
        if len(self.pending) < SAMPLE:
            self.pending.append((Tensors(inputs), result))
        else:
            self.skipped += 1

    def offer_all(self, items, results) -> None:
        """A batch-predict call: each item with its result (the whole list when the counts differ)."""
        if isinstance(results, list) and len(results) == len(items):
            for item, result in zip(items, results, strict=True):
                self.offer(item, result)
        else:
            self.offer(items, results)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vci-drift", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(POLL)
            self.fold()

    def fold(self) -> None:
        """Fold what is queued into the statistics, ``CHUNK`` items at a time."""
        while self.pending:
            with self.lock:
                slot = self.slot()
                for _ in range(min(CHUNK, len(self.pending))):
                    data, result = self.pending.popleft()
                    self._observe(data, result, slot)
            time.sleep(0)  # let the event loop in between two chunks

    def slot(self) -> int:
        return int(self.clock() // (WINDOW / SLOTS))

    def _observe(self, data, result, slot: int) -> None:
        if type(data) is Tensors:
            data, result = tensor_rows(data.inputs), tensor_outputs(result)
        for row in rows(data):
            for name, value in features_of(row):
                stats = self.features.get(name)
                if stats is not None:
                    stats.observe(value, slot)
        for value in outputs(result):
            if isinstance(value, float):
                if math.isfinite(value):
                    self.output.observe(value, slot)
            elif isinstance(value, (str, int)):  # bool is an int: True/False are classes
                label = str(value).lower() if isinstance(value, bool) else str(value)
                if label not in self.classes and len(self.classes) >= MAX_CLASSES:
                    label = "other"
                self.classes[label] = self.classes.get(label, 0) + 1

    def render(self) -> list[str]:
        """The drift series (without the server's constant labels: vci.serve.metrics adds them)."""
        self.fold()
        with self.lock:
            oldest = self.slot() - SLOTS + 1
            lines = _window_lines({name: stats.window(oldest) for name, stats in self.features.items()})
            lines += ["# HELP vci_feature_value Input feature values.", "# TYPE vci_feature_value histogram"]
            for name, stats in self.features.items():
                lines += stats.histogram.render("vci_feature_value", f'feature="{escape_label(name)}"')
            lines += ["# HELP vci_prediction_class_total Predictions per class.", f"# TYPE {CLASSES} counter"]
            lines += [f'{CLASSES}{{class="{escape_label(c)}"}} {n}' for c, n in sorted(self.classes.items())]
            lines += ["# HELP vci_prediction_value Predicted values.", "# TYPE vci_prediction_value histogram"]
            lines += self.output.histogram.render("vci_prediction_value")
        return lines + [
            "# HELP vci_drift_skipped_total Predictions left out of the drift series' sample.",
            "# TYPE vci_drift_skipped_total counter",
            f"vci_drift_skipped_total {self.skipped}",
        ]


def _window_lines(windows: dict[str, tuple[int, float, float, float] | None]) -> list[str]:
    lines = []
    for column, (stat, help_text) in enumerate(
        (("count", "Values seen"), ("mean", "Mean value"), ("min", "Least value"), ("max", "Greatest value"))
    ):
        name = f"vci_feature_window_{stat}"
        lines += [f"# HELP {name} {help_text} of the input feature in the last {WINDOW:g} s.", f"# TYPE {name} gauge"]
        for feature, window in windows.items():
            if window is not None or stat == "count":
                value = window[column] if window is not None else 0
                lines.append(f'{name}{{feature="{escape_label(feature)}"}} {float(value)!r}')
    return lines
