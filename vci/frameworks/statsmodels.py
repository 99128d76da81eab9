"""statsmodels fitted results, saved with their own ``save`` (a pickle: its blob is digest-verified first)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelValidationError
from .base import FrameworkModel, installed, versions
from .convert import is_columnar, to_array, to_frame

REQUIREMENTS = ["statsmodels", "numpy", "scipy", "pandas"]


def pack(results, directory: Path) -> tuple[Path, dict, list[str]]:
    """``model.pickle`` via results.save(); a formula model takes named columns, an array model rows
    (without the constant column: it is added when the model has one and the row lacks it)."""
    if not hasattr(results, "params") or not hasattr(results, "save"):
        raise ModelValidationError(
            f"a {type(results).__name__} is not a fitted statsmodels result",
            hint="log the result of model.fit(), e.g. smf.ols(...).fit()",
        )
    path = directory / "model.pickle"
    results.save(str(path))
    model = results.model
    formula = getattr(model, "formula", None)
    requirements = REQUIREMENTS + [p for p in [installed("formulaic"), installed("patsy")] if p and formula]
    meta = {
        "format": "statsmodels-pickle",
        "class": type(results).__name__,
        "formula": str(formula) if formula is not None else None,
        "exog_names": list(getattr(model, "exog_names", None) or []),
        "versions": versions(*requirements),
    }
    return path, meta, requirements


class StatsmodelsModel(FrameworkModel):
    """results.predict on a DataFrame (formula models) or on rows of exog."""

    module = "statsmodels"
    package = "statsmodels"

    def load(self, path: str) -> None:
        from statsmodels.iolib.smpickle import load_pickle

        self.results = load_pickle(path)
        self.exog_names = self.meta.get("exog_names") or []

    def predict_rows(self, table):
        if self.meta.get("formula") or is_columnar(table):
            return self.results.predict(to_frame(table))
        rows = to_array(table, "float64")
        if self.exog_names[:1] == ["const"] and rows.ndim == 2 and rows.shape[1] == len(self.exog_names) - 1:
            import numpy

            rows = numpy.column_stack([numpy.ones(len(rows)), rows])
        return self.results.predict(rows)


MODEL_CLASS = StatsmodelsModel
