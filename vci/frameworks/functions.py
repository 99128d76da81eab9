"""Plain Python functions as models: pickled by value (with the user's own modules), predict calls them."""

from __future__ import annotations

import pickle
from pathlib import Path

from .base import FrameworkModel, dumps_by_value
from .convert import to_jsonable


def pack(function, directory: Path) -> tuple[Path, dict, list[str]]:
    """cloudpickle ``function`` by value to ``function.pkl`` (its module need not exist where it serves)."""
    path = directory / "function.pkl"
    path.write_bytes(dumps_by_value(function))
    meta = {"format": "cloudpickle", "name": f"{function.__module__}.{function.__qualname__}"}
    return path, meta, []


class FunctionModel(FrameworkModel):
    """predict(data) = the function(data); the blob was digest-verified before it is unpickled."""

    def load(self, path: str) -> None:
        import cloudpickle  # noqa: F401  (by-value pickles need it importable)

        with open(path, "rb") as f:
            self.function = pickle.load(f)

    def predict(self, data):
        return to_jsonable(self.function(data))

    def batch_predict(self, items: list) -> list:
        return [self.predict(item) for item in items]


MODEL_CLASS = FunctionModel
