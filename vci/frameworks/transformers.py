"""Hugging Face transformers pipelines, saved with save_pretrained (a directory) and loaded with
``pipeline(task, model=directory)``: nothing is downloaded from a hub (HF_HUB_OFFLINE=1 while serving)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelValidationError
from .base import FrameworkModel, installed, versions
from .convert import to_jsonable


def pack(pipe, directory: Path) -> tuple[Path, dict, list[str]]:
    """``pipeline/`` via save_pretrained (model weights, config, tokenizer); the task is recorded."""
    task = getattr(pipe, "task", None)
    if not task or not hasattr(pipe, "save_pretrained") or not hasattr(pipe, "tokenizer"):
        raise ModelValidationError(
            f"a {type(pipe).__name__} is not a transformers pipeline",
            hint="log transformers.pipeline(task, model=model, tokenizer=tokenizer)",
        )
    path = directory / "pipeline"
    pipe.save_pretrained(str(path))
    requirements = ["transformers", "tokenizers", "safetensors", "numpy"]
    requirements += [p for p in [installed("torch")] if p and getattr(pipe, "framework", "pt") == "pt"]
    meta = {"format": "save_pretrained", "task": task, "versions": versions(*requirements)}
    return path, meta, requirements


class TransformersModel(FrameworkModel):
    """The pipeline called on a text (or any input its task takes), or on a list of them at once."""

    module = "transformers"
    package = "transformers"

    def before_import(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a served model never fetches from a hub

    def load(self, path: str) -> None:
        self.pipe = self.lib.pipeline(self.meta["task"], model=path, tokenizer=path, device="cpu")

    def predict(self, data):
        return to_jsonable(self.pipe(data))

    def batch_predict(self, items: list) -> list:
        """Texts go through the pipeline as one list (it batches them); other inputs one by one."""
        if items and all(isinstance(item, str) for item in items):
            return to_jsonable(self.pipe(items))
        return [self.predict(item) for item in items]


MODEL_CLASS = TransformersModel
