"""CatBoost classifiers, regressors and models, saved with save_model as CatBoost's own binary format (``.cbm``)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelValidationError
from .base import FrameworkModel, versions
from .convert import is_columnar, to_frame

REQUIREMENTS = ["catboost", "numpy", "pandas"]


def pack(model, directory: Path) -> tuple[Path, dict, list[str]]:
    """``model.cbm``; its feature names (when not CatBoost's defaults "0", "1", ...), width and whether
    some features are categorical (their cells may be strings), for the input schema."""
    if not callable(getattr(model, "is_fitted", None)) or not model.is_fitted():
        raise ModelValidationError(
            f"a {type(model).__name__} is not a fitted CatBoost model", hint="log the model after model.fit(...)"
        )
    path = directory / "model.cbm"
    model.save_model(str(path), format="cbm")
    names = [str(name) for name in model.feature_names_ or []]
    default = names == [str(i) for i in range(len(names))]
    meta = {
        "format": "cbm",
        "class": type(model).__name__,
        "columns": None if default else names,
        "n_features": len(names) or None,
        "categorical": bool(model.get_cat_feature_indices()),
        "versions": versions(*REQUIREMENTS),
    }
    return path, meta, REQUIREMENTS


class CatBoostModel(FrameworkModel):
    """predict of the estimator: labels for a classifier (as it was fit on), values for a regressor."""

    module = "catboost"
    package = "catboost"

    def load(self, path: str) -> None:
        cls = getattr(self.lib, self.meta.get("class", "CatBoost"), self.lib.CatBoost)
        self.model = cls()
        self.model.load_model(path, format="cbm")
        self.columns = self.meta.get("columns")

    def predict_rows(self, table):
        if self.columns or is_columnar(table):
            data = to_frame(table, self.columns)
        else:  # plain rows as CatBoost takes them (a list keeps a categorical feature's strings)
            data = table
        predictions = self.model.predict(data)
        return predictions.reshape(-1) if predictions.ndim == 2 and predictions.shape[1] == 1 else predictions


MODEL_CLASS = CatBoostModel
