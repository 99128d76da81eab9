"""scikit-learn estimators and pipelines, saved with joblib (the format scikit-learn documents)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelValidationError
from .base import FrameworkModel, require, versions
from .convert import is_columnar, to_array, to_frame, to_jsonable

METHODS = ("predict", "transform")


def pack(estimator, directory: Path) -> tuple[Path, dict, list[str]]:
    """Dump ``estimator`` to ``model.joblib``; note its input columns and the method that predicts."""
    import joblib

    method = next((m for m in METHODS if callable(getattr(estimator, m, None))), None)
    if method is None:
        raise ModelValidationError(
            f"{type(estimator).__name__} has neither predict nor transform", hint="log a fitted estimator or pipeline"
        )
    path = directory / "model.joblib"
    joblib.dump(estimator, path)
    columns = getattr(estimator, "feature_names_in_", None)
    requirements = ["scikit-learn", "joblib", "numpy"] + (["pandas"] if columns is not None else [])
    meta = {
        "format": "joblib",
        "method": method,
        "class": type(estimator).__name__,
        "texts": getattr(estimator, "n_features_in_", None) is None,  # e.g. a TfidfVectorizer first
        "n_features": _width(estimator),  # the input schema's row length (vci.schema.from_framework)
        "columns": [str(c) for c in columns] if columns is not None else None,
        "versions": versions(*requirements),
    }
    return path, meta, requirements


def _width(estimator) -> int | None:
    width = getattr(estimator, "n_features_in_", None)
    return None if width is None or not hasattr(width, "__index__") else int(width.__index__())


class SklearnModel(FrameworkModel):
    """predict (or transform) of a joblib-saved estimator; named inputs become a DataFrame."""

    module = "sklearn"
    package = "scikit-learn"

    def load(self, path: str) -> None:
        """joblib's format (joblib also reads plain pickles: an imported MLflow model's), or skops'."""
        if self.meta.get("format") == "skops":
            skops_io = require("skops.io", "skops")
            self.estimator = skops_io.load(path, trusted=self.meta.get("skops_trusted_types"))
        else:
            import joblib

            self.estimator = joblib.load(path)
        self.columns = self.meta.get("columns")
        self.method = getattr(self.estimator, self.meta.get("method", "predict"))

    def predict(self, data):
        """Texts (a string, or a list of them) go as they are to a pipeline that starts from texts."""
        if self.meta.get("texts") and isinstance(data, str):
            return to_jsonable(self.method([data]))[0]
        if self.meta.get("texts") and isinstance(data, list) and all(isinstance(t, str) for t in data):
            return to_jsonable(self.method(data))
        return super().predict(data)

    def predict_rows(self, table):
        if self.columns or is_columnar(table):
            return self.method(to_frame(table, self.columns))
        return self.method(to_array(table))


MODEL_CLASS = SklearnModel
