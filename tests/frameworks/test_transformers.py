"""transformers: a tiny randomly initialised BERT classifier with a locally written WordPiece vocabulary,
wrapped in a pipeline, logged as a save_pretrained directory; nothing comes from a hub."""

import os
from importlib import metadata

import pytest

from tests.frameworks.conftest import log_and_load, pinned

os.environ["HF_HUB_OFFLINE"] = "1"
transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

WORDS = ["good", "bad", "movie", "film", "great", "awful", "the", "a", "was", "is"]


def tiny_pipeline(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = transformers.BertTokenizer(vocab_file=str(vocab))
    config = transformers.BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
    return transformers.pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")


def test_pipeline_round_trip(store, tmp_path):
    pipe = tiny_pipeline(tmp_path)
    model, manifest = log_and_load(pipe, store)
    assert manifest["artifacts"]["model"]["kind"] == "directory"
    assert pinned(manifest, "transformers") == metadata.version("transformers")
    assert pinned(manifest, "torch") == metadata.version("torch")
    texts = ["the movie was good", "a bad film", "great"]
    expected = pipe(texts)
    got = model.predict(texts)
    assert [g["label"] for g in got] == [e["label"] for e in expected]
    assert [g["score"] for g in got] == pytest.approx([e["score"] for e in expected], abs=1e-5)
    assert model.predict("awful film")[0]["label"] == pipe("awful film")[0]["label"]
    assert [b["label"] for b in model.batch_predict(texts)] == [e["label"] for e in expected]


def test_a_bare_model_is_refused_with_the_fix(store):
    config = transformers.BertConfig(
        vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8
    )
    from vci.errors import ModelValidationError

    with pytest.raises(ModelValidationError, match="not a transformers pipeline"):
        log_and_load(transformers.BertModel(config), store)
