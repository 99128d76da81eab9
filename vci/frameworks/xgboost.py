"""XGBoost boosters and scikit-learn-API estimators, saved with save_model (UBJSON, XGBoost's own format)."""

from __future__ import annotations

from pathlib import Path

from .base import FrameworkModel, installed, versions
from .convert import is_columnar, to_array, to_frame


def _distribution() -> str:
    return installed("xgboost-cpu", "xgboost") or "xgboost-cpu"


def pack(model, directory: Path) -> tuple[Path, dict, list[str]]:
    """``model.ubj`` via save_model; the estimator class (XGBClassifier, ...) or ``Booster``."""
    path = directory / "model.ubj"
    model.save_model(str(path))
    booster = model if type(model).__name__ == "Booster" else model.get_booster()
    requirements = [_distribution(), "numpy", "scipy"]
    meta = {
        "format": "ubj",
        "class": type(model).__name__,
        "columns": booster.feature_names,
        "package": requirements[0],
        "versions": versions(*requirements),
    }
    return path, meta, requirements + (["pandas"] if booster.feature_names else [])


class XGBoostModel(FrameworkModel):
    """predict of the estimator (labels for classifiers) or of the Booster (on a DMatrix)."""

    module = "xgboost"
    package = "xgboost-cpu"

    def load(self, path: str) -> None:
        xgboost = self.lib
        cls = getattr(xgboost, self.meta.get("class", "Booster"))
        self.model = cls() if cls is not xgboost.Booster else xgboost.Booster()
        self.model.load_model(path)
        self.columns = self.meta.get("columns")

    def predict_rows(self, table):
        data = to_frame(table, self.columns) if self.columns or is_columnar(table) else to_array(table)
        if isinstance(self.model, self.lib.Booster):
            return self.model.predict(self.lib.DMatrix(data))
        return self.model.predict(data)


MODEL_CLASS = XGBoostModel
