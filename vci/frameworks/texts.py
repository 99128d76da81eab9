"""Text models' inputs (a text or a list of texts) and their batches, shared by the spaCy and
sentence-transformers adapters."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ModelError


def texts_of(data, what: str) -> tuple[list[str], bool]:
    """``(texts, single)``: a text, or a list of texts; a 422 naming ``what`` for anything else."""
    if isinstance(data, str):
        return [data], True
    if isinstance(data, list) and all(isinstance(text, str) for text in data):
        return data, False
    raise ModelError(f"{what} takes a text or a list of texts, not a {type(data).__name__}", status=422)


def predict_texts(data, answer_all: Callable[[list[str]], list], what: str):
    """``answer_all`` over a list of texts, or its one answer for one text."""
    texts, single = texts_of(data, what)
    answers = answer_all(texts)
    return answers[0] if single else answers


def batch_over_texts(items: list, answer_all: Callable[[list[str]], list], what: str) -> list:
    """One ``answer_all`` call for every text of every item (texts or lists of texts), split back per item."""
    parsed = [texts_of(item, what) for item in items]
    answers = answer_all([text for texts, _ in parsed for text in texts])
    result, start = [], 0
    for texts, single in parsed:
        chunk = answers[start : start + len(texts)]
        result.append(chunk[0] if single else chunk)
        start += len(texts)
    return result


def texts_of_tensor(inputs, what: str) -> list[str]:
    """The texts of an Open Inference Protocol BYTES tensor (or of a request's only tensor), UTF-8 decoded."""
    if isinstance(inputs, dict):
        if len(inputs) != 1:
            raise ModelError(f"{what} takes one tensor of texts, not {len(inputs)} tensors", status=422)
        (inputs,) = inputs.values()
    values = inputs.reshape(-1).tolist()
    if not all(isinstance(value, (bytes, str)) for value in values):
        raise ModelError(f"{what} takes a BYTES tensor of texts, not {inputs.dtype}", status=422)
    return [value.decode("utf-8", "replace") if isinstance(value, bytes) else value for value in values]
