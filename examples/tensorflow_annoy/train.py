"""Build the two artifacts: a tiny TensorFlow encoder saved as a SavedModel directory, and an annoy index file
over the embeddings of its training points."""

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
from annoy import AnnoyIndex
from model import DIMENSIONS

TREES = 10


def points() -> tuple[np.ndarray, np.ndarray]:
    """60 points in 4 dimensions around three centres, and which centre each came from."""
    rng = np.random.default_rng(7)
    centres = np.array([[0, 0, 0, 0], [3, 3, 0, 0], [0, 3, 3, 3]], dtype="float32")
    labels = np.repeat(np.arange(3), 20)
    return (centres[labels] + rng.normal(scale=0.5, size=(60, 4))).astype("float32"), labels


class Encoder(tf.Module):
    """4 numbers -> a DIMENSIONS-wide embedding, trained with a classifier head (not saved) on top."""

    def __init__(self):
        super().__init__()
        self.w = tf.Variable(tf.random.stateless_normal((4, DIMENSIONS), seed=(0, 1), stddev=0.5))
        self.b = tf.Variable(tf.zeros((DIMENSIONS,)))

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def embed(self, x):
        return tf.matmul(x, self.w) + self.b


def fit(X: np.ndarray, labels: np.ndarray) -> Encoder:
    encoder = Encoder()
    head = tf.Variable(tf.random.stateless_normal((DIMENSIONS, 3), seed=(2, 3)))
    variables = [encoder.w, encoder.b, head]
    for _ in range(30):  # plain gradient descent
        with tf.GradientTape() as tape:
            logits = tf.matmul(encoder.embed(X), head)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        for variable, gradient in zip(variables, tape.gradient(loss, variables), strict=True):
            variable.assign_sub(0.1 * gradient)
    return encoder


def train(out_dir: str = "out") -> tuple[Path, Path]:
    """``out/saved_model/`` (the encoder) and ``out/index.ann`` (annoy, item i = training point i)."""
    X, labels = points()
    encoder = fit(X, labels)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved_model = out / "saved_model"
    tf.saved_model.save(encoder, str(saved_model))
    index = AnnoyIndex(DIMENSIONS, "euclidean")
    index.set_seed(7)
    for i, vector in enumerate(encoder.embed(X).numpy()):
        index.add_item(i, vector.tolist())
    index.build(TREES)
    index.save(str(out / "index.ann"))
    return saved_model, out / "index.ann"


if __name__ == "__main__":
    print(*train(sys.argv[1] if len(sys.argv) > 1 else "out"))
