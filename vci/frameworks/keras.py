"""Keras 3 models, saved as a ``.keras`` file; served on the backend they were logged with (KERAS_BACKEND)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelValidationError
from .base import FrameworkModel, versions
from .convert import to_array

BACKEND_PACKAGES = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax"}


def pack(model, directory: Path) -> tuple[Path, dict, list[str]]:
    """``model.keras`` via model.save; the backend in use is recorded and its package pinned."""
    import keras

    path = directory / "model.keras"
    model.save(str(path))
    backend = keras.backend.backend()
    requirements = ["keras", "numpy"] + ([BACKEND_PACKAGES[backend]] if backend in BACKEND_PACKAGES else [])
    meta = {"format": "keras", "backend": backend, "versions": versions(*requirements)}
    return path, meta, requirements


class KerasModel(FrameworkModel):
    """model.predict on float32 rows (Keras batches them itself)."""

    module = "keras"
    package = "keras"

    def before_import(self) -> None:
        os.environ.setdefault("KERAS_BACKEND", self.meta.get("backend", "torch"))

    def load(self, path: str) -> None:
        backend, running = self.meta.get("backend", "torch"), self.lib.backend.backend()
        if running != backend:
            raise ModelValidationError(
                f"this Keras model was logged on the {backend} backend, but Keras runs on {running} here",
                hint=f"set KERAS_BACKEND={backend} before keras is imported",
            )
        self.model = self.lib.saving.load_model(path)

    def predict_rows(self, table):
        return self.model.predict(to_array(table, "float32"), verbose=0)


MODEL_CLASS = KerasModel
