"""sentence-transformers: a tiny model built in the test (a randomly initialised BERT with a locally written
WordPiece vocabulary, mean pooling), saved with save(), served as the original embeds; nothing from a hub."""

import os
from importlib import metadata

import numpy as np
import pytest

from tests.frameworks.conftest import assert_close, log_and_load, pinned
from vci.errors import ModelValidationError
from vci.validator import Validator

os.environ["HF_HUB_OFFLINE"] = "1"
transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
sentence_transformers = pytest.importorskip("sentence_transformers")
from sentence_transformers.sentence_transformer.modules import Pooling, Transformer  # noqa: E402

WORDS = ["good", "bad", "movie", "film", "great", "awful", "the", "a", "was", "is"]
TEXTS = ["the movie was good", "a bad film", "great", "awful awful film"]


def tiny_bert(tmp_path):
    base = tmp_path / "bert"
    base.mkdir()
    (base / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(base / "vocab.txt")).save_pretrained(str(base))
    config = transformers.BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(str(base))
    return base


def tiny_model(tmp_path):
    base = tiny_bert(tmp_path)
    encoder = Transformer(str(base))
    pooling = Pooling(16, "mean")
    return sentence_transformers.SentenceTransformer(modules=[encoder, pooling], device="cpu")


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
