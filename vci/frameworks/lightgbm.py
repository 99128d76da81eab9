"""LightGBM boosters and scikit-learn-API estimators, saved as LightGBM's text model (save_model)."""

from __future__ import annotations

import re
from pathlib import Path

from .base import FrameworkModel, versions
from .convert import is_columnar, to_array, to_frame

REQUIREMENTS = ["lightgbm", "numpy", "scipy"]
DEFAULT_NAME = re.compile(r"^Column_\d+$")


def pack(model, directory: Path) -> tuple[Path, dict, list[str]]:
    """``model.txt``; for a classifier its classes, so predictions are labels as the estimator gives."""
    booster = getattr(model, "booster_", model)
    path = directory / "model.txt"
    booster.save_model(str(path))
    names = booster.feature_name()
    columns = None if all(DEFAULT_NAME.match(n) for n in names) else names
    classes = getattr(model, "classes_", None) if hasattr(model, "booster_") else None
    meta = {
        "format": "text",
        "class": type(model).__name__,
        "columns": columns,
        "classes": classes.tolist() if classes is not None else None,
        "versions": versions(*REQUIREMENTS),
    }
    return path, meta, REQUIREMENTS + (["pandas"] if columns else [])


class LightGBMModel(FrameworkModel):
    """Booster.predict; a classifier's probabilities become its labels (as LGBMClassifier.predict)."""

    module = "lightgbm"
    package = "lightgbm"

    def load(self, path: str) -> None:
        self.booster = self.lib.Booster(model_file=path)
        self.columns = self.meta.get("columns")
        self.classes = self.meta.get("classes")

    def predict_rows(self, table):
        data = to_frame(table, self.columns) if self.columns or is_columnar(table) else to_array(table)
        scores = self.booster.predict(data)
        if not self.classes:
            return scores
        if scores.ndim == 1:  # binary: the probability of the second class
            return [self.classes[int(p > 0.5)] for p in scores]
        return [self.classes[i] for i in scores.argmax(axis=1)]


MODEL_CLASS = LightGBMModel
