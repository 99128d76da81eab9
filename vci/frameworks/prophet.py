"""Prophet forecasters, saved with prophet.serialize.model_to_json (Prophet's own, versioned JSON format).

A request is a horizon (``7``: the next seven periods after the history, at its frequency), dates
(``["2024-03-01", ...]``) or records with ``ds`` and the model's extra regressors; the answer is one
``{ds, yhat, yhat_lower, yhat_upper}`` per date. Predicting needs no Stan (only fitting does). Prophet
samples the bounds with numpy's global generator: each call seeds it (and restores it after), so a request
gets the same bounds each time.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

from ..errors import ModelError, ModelValidationError
from .base import FrameworkModel, versions

REQUIREMENTS = ["prophet", "cmdstanpy", "holidays", "pandas", "numpy"]
COLUMNS = ["ds", "yhat", "yhat_lower", "yhat_upper"]
MAX_HORIZON = 100_000  # periods in one request: a bigger one is a typo, not a forecast
SEED = 0


def pack(model, directory: Path) -> tuple[Path, dict, list[str]]:
    """``prophet.json``; the history's frequency (for a horizon) and the extra regressors (each date's inputs)."""
    if getattr(model, "history", None) is None:
        raise ModelValidationError("this Prophet model is not fitted", hint="log it after model.fit(frame)")
    from prophet.serialize import model_to_json

    path = directory / "prophet.json"
    path.write_text(model_to_json(model))
    regressors = list(model.extra_regressors)
    meta = {
        "format": "model_to_json",
        "freq": _frequency(model.history_dates),
        "regressors": regressors,
        "input_schema": _input_schema(regressors),
        "versions": versions(*REQUIREMENTS),
    }
    return path, meta, REQUIREMENTS


def _frequency(dates) -> str | None:
    """pandas' name of the history's frequency ("D", "h", "MS", ...), None when the dates have none."""
    import pandas

    if len(dates) < 3:
        return None
    with warnings.catch_warnings():  # pandas 3 warns that infer_freq will return an offset
        warnings.simplefilter("ignore")
        freq = pandas.infer_freq(pandas.DatetimeIndex(dates))
    return getattr(freq, "freqstr", freq)


def _input_schema(regressors: list[str]) -> dict:
    """A horizon or dates (no regressors), or records with ``ds`` and every regressor (vci.schema)."""
    date = {"type": "string", "minLength": 1}
    record = {
        "type": "object",
        "properties": {"ds": date, **{name: {"type": "number"} for name in regressors}},
        "required": ["ds", *regressors],
    }
    records = {"type": "array", "items": record, "minItems": 1}
    if regressors:
        return records
    horizon = {"type": "integer", "minimum": 1, "maximum": MAX_HORIZON}
    return {"anyOf": [horizon, {"type": "array", "items": date, "minItems": 1}, records]}


@contextmanager
def _seeded():
    import numpy

    state = numpy.random.get_state()
    numpy.random.seed(SEED)
    try:
        yield
    finally:
        numpy.random.set_state(state)


class ProphetModel(FrameworkModel):
    """predict over the requested dates; several requests' dates in one predict call when batched."""

    module = "prophet"
    package = "prophet"

    def load(self, path: str) -> None:
        from prophet.serialize import model_from_json

        self.model = model_from_json(Path(path).read_text())
        self.regressors = self.meta.get("regressors") or []

    def future(self, data):
        """The frame of dates (and regressors) a request asks about."""
        import pandas

        if isinstance(data, bool) or not isinstance(data, (int, list)) or data == []:
            raise ModelError("a Prophet model takes a horizon (a number of periods), dates or records", status=422)
        if isinstance(data, int):
            return self.horizon(data)
        frame = pandas.DataFrame({"ds": data}) if all(isinstance(d, str) for d in data) else None
        if frame is None and all(isinstance(d, dict) for d in data):
            frame = pandas.DataFrame.from_records(data)
        missing = [c for c in ["ds", *self.regressors] if frame is None or c not in frame.columns]
        if frame is None or missing:
            raise ModelError(f"each record needs {', '.join(['ds', *self.regressors])}", status=422)
        try:
            frame["ds"] = pandas.to_datetime(frame["ds"])
        except (ValueError, TypeError) as exc:
            raise ModelError(f"not a date: {exc}", status=422) from None
        return frame

    def horizon(self, periods: int):
        freq = self.meta.get("freq")
        if self.regressors or not freq:
            why = "it has extra regressors" if self.regressors else "its history has no regular frequency"
            raise ModelError(f"this Prophet model takes dates, not a horizon: {why}", status=422)
        if not 1 <= periods <= MAX_HORIZON:
            raise ModelError(f"the horizon must be 1 to {MAX_HORIZON} periods, got {periods}", status=422)
        return self.model.make_future_dataframe(periods=periods, freq=freq, include_history=False)

    def forecast(self, frame) -> list[dict]:
        try:
            with _seeded():
                answer = self.model.predict(frame)[COLUMNS]
        except ValueError as exc:  # Prophet's word for bad input: a NaN regressor, a timezone, ...
            raise ModelError(f"Prophet cannot forecast this input: {exc}", status=422) from None
        answer["ds"] = answer["ds"].dt.strftime("%Y-%m-%dT%H:%M:%S")
        return answer.to_dict("records")

    def predict(self, data):
        return self.forecast(self.future(data))

    def batch_predict(self, items: list) -> list:
        """Every item's dates in one predict call (dates are forecast independently), split back per item."""
        import pandas

        frames = [self.future(item) for item in items]
        if not frames:
            return []
        rows = self.forecast(pandas.concat(frames, ignore_index=True))
        result, start = [], 0
        for frame in frames:
            result.append(rows[start : start + len(frame)])
            start += len(frame)
        return result


MODEL_CLASS = ProphetModel
