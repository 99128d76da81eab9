"""Keras 3 (torch backend): learn y = 2x + 1, log the model itself (a .keras file), load it back as the
server does, predict.

Run from anywhere:  python examples/keras/main.py
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported; recorded with the model

import keras  # noqa: E402
import numpy as np  # noqa: E402

import vci  # noqa: E402


def main() -> dict:
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    net.compile(optimizer=keras.optimizers.SGD(learning_rate=0.2), loss="mse")
    x = np.linspace(-1, 1, 32, dtype="float32").reshape(-1, 1)
    net.fit(x, 2 * x + 1, epochs=100, batch_size=32, verbose=0)
    run = vci.init(project="keras-example")
    run.log_model(net)  # model.keras; keras, torch (the backend) and numpy pinned
    run.commit()
    model = vci.get_run(run.id).load_model()  # built exactly as the model server builds it
    got = model.predict([[1.0], [2.0]])
    original = net.predict(np.array([[1.0], [2.0]], dtype="float32"), verbose=0).tolist()
    result = {
        "run_id": run.id,
        "model_class": run.manifest["model"]["class"],
        "prediction": [[round(v, 2) for v in row] for row in got],
        "same_as_original": got == original,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
