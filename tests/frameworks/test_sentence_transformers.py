"""sentence-transformers: a tiny model built by the example's own code (a randomly initialised BERT with a
locally written WordPiece vocabulary, mean pooling), saved with save(), served as the original embeds;
nothing from a hub."""

import os
from importlib import metadata

import numpy as np
import pytest

from tests.frameworks.conftest import assert_close, example, log_and_load, pinned
from vci.errors import ModelValidationError
from vci.validator import Validator

os.environ["HF_HUB_OFFLINE"] = "1"
transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
sentence_transformers = pytest.importorskip("sentence_transformers")

TEXTS = ["the movie was good", "a bad film", "great", "awful awful film"]
built = example("sentence_transformers")  # the example's own tiny model: one copy


def tiny_bert(tmp_path):
    base = tmp_path / "bert"
    base.mkdir()
    return built.tiny_bert(base)


def tiny_model(tmp_path):
    base = tmp_path / "model"
    base.mkdir()
    return built.tiny_model(base)


def test_embeddings_round_trip(store, tmp_path):
    original = tiny_model(tmp_path)
    model, manifest = log_and_load(original, store)
    assert manifest["artifacts"]["model"]["kind"] == "directory"
    assert pinned(manifest, "sentence-transformers") == metadata.version("sentence-transformers")
    assert pinned(manifest, "torch") == metadata.version("torch")
    expected = original.encode(TEXTS)
    assert expected.shape == (4, 16) and not np.allclose(expected[0], expected[1])  # texts differ
    assert_close(model.predict(TEXTS), expected)
    assert_close(model.predict("great"), expected[2])
    batch = model.batch_predict([TEXTS[:2], "great", TEXTS[3:]])
    assert_close(batch[0], expected[:2]) and assert_close(batch[1], expected[2])
    assert_close(batch[2], expected[3:])
    assert_close(model.predict_tensors(np.array([t.encode() for t in TEXTS], dtype=object)), expected)


def test_input_schema_is_texts(store, tmp_path):
    _, manifest = log_and_load(tiny_model(tmp_path), store)
    check = Validator(manifest["schemas"]["input"])
    assert manifest["schemas"]["from"]["input"] == "sentence_transformers"
    assert check.problem(TEXTS) is None and check.problem("one") is None
    assert check.problem([[0.5, 1.0]]) == "$[0]: expected string, got array"


def test_a_cross_encoder_is_refused_with_the_fix(store, tmp_path):
    cross_encoder = sentence_transformers.CrossEncoder(str(tiny_bert(tmp_path)), device="cpu")
    with pytest.raises(ModelValidationError, match="is not a SentenceTransformer"):
        log_and_load(cross_encoder, store)
