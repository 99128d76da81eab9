"""sentence-transformers: a tiny model built here (a randomly initialised BERT with a locally written
vocabulary and mean pooling), logged (save(), a directory), loaded back as the server does, asked for
embeddings. Nothing is downloaded from a hub.

Run from anywhere:  python examples/sentence_transformers/main.py
"""

import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # this example never fetches anything

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from sentence_transformers.sentence_transformer.modules import Pooling, Transformer  # noqa: E402

import vci  # noqa: E402

WORDS = ["the", "a", "movie", "film", "was", "is", "good", "great", "bad", "awful"]


def tiny_bert(workdir: Path) -> Path:
    """A 1-layer BERT (hidden size 16) and its tokenizer saved in ``workdir``: untrained, but reproducible."""
    (workdir / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(workdir / "vocab.txt")).save_pretrained(str(workdir))
    config = transformers.BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(str(workdir))
    return workdir


def tiny_model(workdir: Path) -> SentenceTransformer:
    """The tiny BERT (see tiny_bert) with mean pooling: a sentence embedding of 16 floats."""
    return SentenceTransformer(modules=[Transformer(str(tiny_bert(workdir))), Pooling(16, "mean")], device="cpu")


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        original = tiny_model(Path(tmp))
    run = vci.init(project="sentence-transformers-example")
    run.log_model(original)  # save() directory; sentence-transformers, transformers, torch pinned
    run.commit()
    model = vci.get_run(run.id).load_model()  # built exactly as the model server builds it
    texts = ["the movie was good", "a bad film"]
    embeddings = model.predict(texts)  # one list of 16 floats per text
    result = {
        "run_id": run.id,
        "model_class": run.manifest["model"]["class"],
        "dimensions": [len(e) for e in embeddings],
        "same_as_original": bool(np.allclose(embeddings, original.encode(texts), atol=1e-5)),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
