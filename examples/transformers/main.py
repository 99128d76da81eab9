"""Hugging Face transformers: a tiny randomly initialised BERT classifier with a locally written
vocabulary, wrapped in a pipeline, logged (save_pretrained, a directory), loaded back as the server does
(pipeline(task, model=directory)), asked for labels. Nothing is downloaded from a hub.

Run from anywhere:  python examples/transformers/main.py
"""

import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # this example never fetches anything

import torch  # noqa: E402
import transformers  # noqa: E402

import vci  # noqa: E402

WORDS = ["the", "a", "movie", "film", "was", "is", "good", "great", "bad", "awful"]


def tiny_pipeline(workdir: Path):
    """A 2-layer BERT (hidden size 32): untrained, so its labels mean nothing, but they are reproducible."""
    vocab = workdir / "vocab.txt"
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


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        pipe = tiny_pipeline(Path(tmp))
    run = vci.init(project="transformers-example")
    run.log_model(pipe)  # save_pretrained directory; transformers, tokenizers, torch pinned
    run.commit()
    model = vci.get_run(run.id).load_model()  # built exactly as the model server builds it
    texts = ["the movie was good", "a bad film"]
    got = model.predict(texts)
    result = {
        "run_id": run.id,
        "model_class": run.manifest["model"]["class"],
        "prediction": [answer["label"] for answer in got],
        "same_as_original": [a["label"] for a in got] == [a["label"] for a in pipe(texts)],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
