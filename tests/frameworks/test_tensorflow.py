"""TensorFlow SavedModels: a tf.Module trained here, and Keras on the TensorFlow backend exported with
``model.export`` (in a process of its own: this one's Keras may run on torch), served as the originals predict."""

import json
import os
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

from tests.frameworks.conftest import assert_close, log_and_load, pinned
from vci.validator import Validator

# importing tensorflow imports keras, whose backend is then fixed for the process: the one test_keras.py expects
os.environ.setdefault("KERAS_BACKEND", "torch")
tf = pytest.importorskip("tensorflow")


class Linear(tf.Module):
    """y = x W + b, fit by gradient descent below."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.w = tf.Variable(tf.random.stateless_normal((n_in, n_out), seed=(1, 2)))
        self.b = tf.Variable(tf.zeros((n_out,)))

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def __call__(self, x):
        return tf.matmul(x, self.w) + self.b


def trained_linear() -> tuple[Linear, np.ndarray]:
    X = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    y = X @ np.array([[1.0, 0.5], [-2.0, 0.0], [0.5, 3.0]], dtype="float32") + 1.0
    net = Linear(3, 2)
    for _ in range(20):  # plain gradient descent: tf.keras would be Keras 3 on whatever backend it was imported on
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((net(X) - y) ** 2)
        for variable, gradient in zip([net.w, net.b], tape.gradient(loss, [net.w, net.b]), strict=True):
            variable.assign_sub(0.1 * gradient)
    return net, X


def test_a_tf_module_is_saved_as_a_saved_model_and_predicts_as_the_original(store):
    net, X = trained_linear()
    model, manifest = log_and_load(net, store)
    assert manifest["artifacts"]["model"]["kind"] == "directory"
    assert model.device == ("cuda:0" if tf.config.list_physical_devices("GPU") else "cpu")  # /metadata's device
    expected = net(X[:4]).numpy()
    assert_close(model.predict(X[:4].tolist()), expected)
    assert_close(model.predict(X[0].tolist()), expected[0])
    assert_close(model.batch_predict([X[:1].tolist(), X[1:4].tolist()])[1], expected[1:4])
    package = "tensorflow-cpu" if pinned(manifest, "tensorflow-cpu") else "tensorflow"
    assert pinned(manifest, package) == metadata.version(package)
    assert manifest["schemas"]["from"]["input"] == "tensorflow"
    schema = Validator(manifest["schemas"]["input"])
    assert schema.problem(X[:2].tolist()) is None and schema.problem([[1.0, 2.0]]) == "$[0]: expected 3 items, got 2"


def test_a_module_without_a_signature_is_refused_with_the_fix(store):
    import vci

    bare = tf.Module()
    bare.v = tf.Variable(1.0)
    with pytest.raises(vci.ModelValidationError, match="has no signature to serve") as refused:
        log_and_load(bare, store)
    assert "input_signature" in refused.value.hint


EXPORT = """
import json, sys
import keras, numpy as np
assert keras.backend.backend() == "tensorflow"
keras.utils.set_random_seed(0)
net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(3)])
net.compile(optimizer="sgd", loss="mse")
X = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
net.fit(X, X[:, :3] * 2, epochs=2, verbose=0)
net.export(sys.argv[1])  # a SavedModel whose serving_default takes rows of 4
print(json.dumps({"X": X[:3].tolist(), "expected": net.predict(X[:3], verbose=0).tolist()}))
"""


def test_a_keras_model_exported_on_the_tensorflow_backend_is_logged_as_a_directory(store, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(
        [sys.executable, "-c", EXPORT, str(tmp_path / "exported")], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    trained = json.loads(out.stdout.strip().splitlines()[-1])
    model, manifest = log_and_load(str(tmp_path / "exported"), store)
    assert model.meta["framework"] == "tensorflow" and model.meta["format"] == "saved_model"
    assert_close(model.predict(trained["X"]), trained["expected"])
    assert Validator(manifest["schemas"]["input"]).problem([[0.0] * 3]) == "$[0]: expected 4 items, got 3"


def test_tensorflow_asked_by_name_pins_the_cpu_build_installed_here():
    from packaging.utils import canonicalize_name

    from vci.requirements import lock_requirements, pin_requirement

    cpu = metadata.version("tensorflow-cpu")  # what scripts/test.sh installs (the frameworks extra)
    assert pin_requirement("tensorflow") == f"tensorflow-cpu=={cpu}"
    assert pin_requirement(f"tensorflow=={cpu}") == f"tensorflow-cpu=={cpu}"
    names = {canonicalize_name(e["name"]) for e in lock_requirements([pin_requirement("tensorflow")])}
    assert {"tensorflow-cpu", "keras", "numpy"} <= names and "tensorflow" not in names
