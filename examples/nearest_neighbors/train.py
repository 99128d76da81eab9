"""Build the two artifacts: an encoder saved as a directory, and a nearest-neighbour index file."""

import json
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def train(out_dir: str = "out") -> tuple[Path, Path]:
    """``out/encoder/`` (pipeline.joblib + config.json) and ``out/index.npz`` (embeddings + labels)."""
    iris = load_iris()
    encoder = make_pipeline(StandardScaler(), PCA(n_components=2, random_state=0)).fit(iris.data)
    out = Path(out_dir)
    encoder_dir = out / "encoder"
    encoder_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(encoder, encoder_dir / "pipeline.joblib")
    config = {"k": 3, "species": iris.target_names.tolist()}
    (encoder_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    index = out / "index.npz"
    np.savez(index, embeddings=encoder.transform(iris.data), labels=iris.target)
    return encoder_dir, index


if __name__ == "__main__":
    print(*train(sys.argv[1] if len(sys.argv) > 1 else "out"))
