"""Keras 3 on the torch backend: a small Sequential, saved as .keras, served as the original predicts."""

import os
from importlib import metadata

import numpy as np
import pytest

from tests.frameworks.conftest import assert_close, log_and_load, pinned

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported
keras = pytest.importorskip("keras")


def test_sequential_round_trip(store):
    assert keras.backend.backend() == "torch"
    keras.utils.set_random_seed(0)
    layers = [keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)]
    net = keras.Sequential(layers)
    net.compile(optimizer="sgd", loss="mse")
    X = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    net.fit(X, X[:, :2] * 2, epochs=2, verbose=0)
    model, manifest = log_and_load(net, store)
    assert manifest["artifacts"]["model"]["filename"] == "model.keras"
    assert pinned(manifest, "keras") == metadata.version("keras")
    assert pinned(manifest, "torch") == metadata.version("torch")
    expected = net.predict(X[:4], verbose=0)
    assert_close(model.predict(X[:4].tolist()), expected)
    assert_close(model.predict(X[0].tolist()), expected[0])
