"""Analysis from Prometheus: one query whose value must keep a bound, read in a promotion's gate and at
every canary step of an environment with ``analysis: {prometheus: URL, query: PROMQL, max: N, min: N}``.

The query goes to Prometheus's HTTP API (``GET /api/v1/query``, an instant query) and must give one
number: a scalar, or a vector of exactly one sample (aggregate with ``sum(...)``, ``max(...)``). "No
data" never passes: an empty vector, NaN, several series, a Prometheus that cannot be reached or
answers with an error, each fails the analysis with what was seen, as a canary with too few requests
fails its step. A business metric (conversions, the share of a class among answers) is written as the
query; vci adds nothing to it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from urllib.parse import urlencode

from ..config import Environment
from ..redact import mask_url

TIMEOUT = 10.0  # seconds for one query: a step or gate that cannot read its metric fails, it does not hang


@dataclass(frozen=True)
class Analysis:
    """An environment's ``analysis:`` setting (checked when the settings load: ``envrules.check_analysis``)."""

    prometheus: str
    query: str
    max: float | None = None
    min: float | None = None

    @classmethod
    def of(cls, environment: Environment) -> Analysis | None:
        return cls(**environment.analysis) if environment.analysis else None

    def check(self) -> tuple[bool, str]:
        """``(passed, why)``: the query's value now against the bounds; no data fails."""
        value, problem = self.read()
        where = f"analysis {self.query!r}"
        if value is None:
            return False, f"{where}: no data ({problem})"
        if self.max is not None and value > self.max:
            return False, f"{where} = {value:g} > max {self.max:g}"
        if self.min is not None and value < self.min:
            return False, f"{where} = {value:g} < min {self.min:g}"
        return True, f"{where} = {value:g}" + "".join(
            f", {name} {bound:g}" for name, bound in (("max", self.max), ("min", self.min)) if bound is not None
        )

    def read(self) -> tuple[float | None, str]:
        """The query's one value now, or ``(None, why there is none)``."""
        import urllib.error
        import urllib.request

        url = self.prometheus.rstrip("/") + "/api/v1/query?" + urlencode({"query": self.query})
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 400 for a bad query, with Prometheus's own error text
            return None, f"{mask_url(self.prometheus)} answered {exc.code}: {_error_text(exc)}"
        except (OSError, ValueError) as exc:
            return None, f"{mask_url(self.prometheus)} could not be read: {exc}"
        return one_value(body)


def one_value(body) -> tuple[float | None, str]:
    """The single number in a ``/api/v1/query`` answer, or ``(None, why there is none)`` (pure)."""
    if not isinstance(body, dict) or body.get("status") != "success":
        return None, "the query failed: " + str(body.get("error") if isinstance(body, dict) else repr(body))
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    samples: list
    if kind == "scalar":
        samples = [result]
    elif kind == "vector" and isinstance(result, list):
        samples = [series.get("value") for series in result]
    else:
        return None, f"a {kind} result, not a number (use an instant vector or scalar query)"
    if len(samples) != 1:
        what = "no series matched" if not samples else f"{len(samples)} series, not one (aggregate them: sum(...))"
        return None, what
    try:
        value = float(samples[0][1])
    except (TypeError, ValueError, IndexError):
        return None, f"an unreadable sample {samples[0]!r}"
    return (None, "the value is NaN") if math.isnan(value) else (value, "")


def _error_text(exc) -> str:
    try:
        return str(json.loads(exc.read()).get("error", "")) or exc.reason
    except (OSError, ValueError, AttributeError):
        return str(exc.reason)
