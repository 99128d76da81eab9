"""spaCy pipelines (a ``Language``), saved with nlp.to_disk (a directory) and loaded with spacy.load."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError, ModelValidationError
from .base import FrameworkModel, versions
from .convert import to_jsonable
from .texts import batch_over_texts, predict_texts, texts_of_tensor

REQUIREMENTS = ["spacy", "numpy"]
CLASSIFIERS = ("textcat", "textcat_multilabel")  # the factories whose answer is doc.cats
WHAT = "this spaCy model"


def pack(nlp, directory: Path) -> tuple[Path, dict, list[str]]:
    """``pipeline/`` via to_disk; what a text's answer is: its categories (a text classifier in the
    pipeline) or its entities (a named-entity recogniser)."""
    if not hasattr(nlp, "to_disk") or not hasattr(nlp, "pipe_names"):
        raise ModelValidationError(
            f"a {type(nlp).__name__} is not a spaCy pipeline", hint="log the Language object, e.g. spacy.blank('en')"
        )
    output = _output(nlp)
    path = directory / "pipeline"
    nlp.to_disk(path)
    meta = {
        "format": "to_disk",
        "lang": nlp.lang,
        "pipeline": list(nlp.pipe_names),
        "output": output,
        "labels": _labels(nlp) if output == "cats" else None,  # a V2 answer's columns, in this order
        "texts": True,  # the input schema: a text or a list of texts (vci.schema)
        "versions": versions(*REQUIREMENTS),
    }
    return path, meta, REQUIREMENTS


def _output(nlp) -> str:
    factories = {nlp.get_pipe_meta(name).factory for name in nlp.pipe_names}
    if factories & set(CLASSIFIERS):
        return "cats"
    if "ner" in factories or "entity_ruler" in factories:
        return "ents"
    raise ModelValidationError(
        f"this spaCy pipeline ({', '.join(nlp.pipe_names) or 'no components'}) has no text classifier or entity "
        "recogniser, so vci cannot tell what it answers",
        hint="add a trained textcat, textcat_multilabel or ner component, or log a Model class of your own",
    )


def _labels(nlp) -> list[str]:
    names = [name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory in CLASSIFIERS]
    return [str(label) for name in names for label in nlp.get_pipe(name).labels]


class SpacyModel(FrameworkModel):
    """A text's categories (``{label: score}``) or entities (``[{text, label, start, end}]``); a list of
    texts goes through nlp.pipe at once."""

    module = "spacy"
    package = "spacy"

    def load(self, path: str) -> None:
        self.nlp = self.lib.load(path)
        self.output = self.meta.get("output", "cats")

    def answer(self, doc):
        if self.output == "cats":
            return to_jsonable(dict(doc.cats))
        return [{"text": e.text, "label": e.label_, "start": e.start_char, "end": e.end_char} for e in doc.ents]

    def predict(self, data):
        return predict_texts(data, self.answer_all, WHAT)

    def answer_all(self, texts: list[str]) -> list:
        return [self.answer(doc) for doc in self.nlp.pipe(texts)]

    def batch_predict(self, items: list) -> list:
        """Every text of every item through one nlp.pipe, split back per item."""
        return batch_over_texts(items, self.answer_all, WHAT)

    def predict_tensors(self, inputs):
        """A BYTES tensor of texts (Open Inference Protocol) -> each text's scores, a column per label."""
        if self.output != "cats":
            raise ModelError(f"{WHAT} answers entities, which have no tensor form: use /predict", status=422)
        import numpy

        docs = self.nlp.pipe(texts_of_tensor(inputs, WHAT))
        return numpy.array([[doc.cats[label] for label in self.meta["labels"]] for doc in docs], dtype="float32")


MODEL_CLASS = SpacyModel
