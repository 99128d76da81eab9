"""ONNX: convert a scikit-learn regression with skl2onnx, log the ModelProto (or a path to a .onnx
file), load it back as the server does (onnxruntime), predict.

Run from anywhere:  python examples/onnx/main.py
"""

import json

import numpy as np
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression

import vci


def main() -> dict:
    X = np.random.default_rng(0).normal(size=(50, 2)).astype("float32")
    reg = LinearRegression().fit(X, 3 * X[:, 0] - 2 * X[:, 1] + 1)
    proto = to_onnx(reg, X[:1])
    run = vci.init(project="onnx-example")
    run.log_model(proto)  # model.onnx; onnxruntime and numpy pinned (onnx is not needed)
    run.commit()
    model = vci.get_run(run.id).load_model()  # built exactly as the model server builds it
    rows = [[1.0, 1.0], [2.0, 0.0]]
    got = model.predict(rows)
    original = reg.predict(np.array(rows, dtype="float32")).reshape(-1, 1)
    result = {
        "run_id": run.id,
        "model_class": run.manifest["model"]["class"],
        "prediction": [[round(v, 3) for v in row] for row in got],
        "same_as_original": bool(np.allclose(got, original, atol=1e-4)),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
