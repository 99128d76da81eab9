"""sentence-transformers models, saved with save() (a directory) and loaded with SentenceTransformer on the
CPU: nothing is downloaded from a hub (HF_HUB_OFFLINE=1 while serving)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelValidationError
from .base import FrameworkModel, installed, require, versions
from .convert import to_jsonable
from .texts import batch_over_texts, predict_texts, texts_of_tensor

WHAT = "this sentence-transformers model"
REQUIREMENTS = ["sentence-transformers", "transformers", "tokenizers", "safetensors", "huggingface-hub", "numpy"]


def pack(model, directory: Path) -> tuple[Path, dict, list[str]]:
    """``model/`` via save() (its modules: transformer, pooling, ...); the embedding's dimension."""
    if not isinstance(model, require("sentence_transformers", "sentence-transformers").SentenceTransformer):
        raise ModelValidationError(
            f"a {type(model).__name__} is not a SentenceTransformer (the embedding models vci serves)",
            hint="log a SentenceTransformer, or a Model class of your own that loads this model",
        )
    path = directory / "model"
    model.save(str(path))
    requirements = REQUIREMENTS + [p for p in [installed("torch")] if p]
    meta = {
        "format": "save",
        "dimension": _dimension(model),
        "texts": True,  # the input schema: a text or a list of texts (vci.schema)
        "versions": versions(*requirements),
    }
    return path, meta, requirements


def _dimension(model) -> int | None:
    """The embedding's length (newer sentence-transformers renamed get_sentence_embedding_dimension)."""
    method = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return method()


class SentenceTransformersModel(FrameworkModel):
    """A text's embedding (a list of floats), or a list of embeddings for a list of texts, encoded at once."""

    module = "sentence_transformers"
    package = "sentence-transformers"

    def before_import(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a served model never fetches from a hub

    def load(self, path: str) -> None:
        self.model = self.lib.SentenceTransformer(path, device="cpu")

    def embed(self, texts: list[str]) -> list:
        return to_jsonable(self.encode(texts))

    def encode(self, texts: list[str]):
        return self.model.encode(texts, convert_to_numpy=True, show_progress_bar=False)

    def predict(self, data):
        return predict_texts(data, self.embed, WHAT)

    def batch_predict(self, items: list) -> list:
        """Every text of every item in one encode call (it batches them), split back per item."""
        return batch_over_texts(items, self.embed, WHAT)

    def predict_tensors(self, inputs):
        """A BYTES tensor of texts (Open Inference Protocol) -> their embeddings, one row each."""
        return self.encode(texts_of_tensor(inputs, WHAT))


MODEL_CLASS = SentenceTransformersModel
