"""LightGBM: log a trained LGBMClassifier with string labels, load it back as the server does, predict.

Run from anywhere:  python examples/lightgbm/main.py
"""

import json

import lightgbm
from sklearn.datasets import load_iris

import vci


def main() -> dict:
    iris = load_iris()
    species = iris.target_names[iris.target]
    clf = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=4, min_child_samples=5, verbose=-1)
    clf.fit(iris.data, species)
    run = vci.init(project="lightgbm-example")
    run.log_model(clf)  # saved as LightGBM's text model; labels kept in model.json
    run.commit()
    model = vci.get_run(run.id).load_model()  # built exactly as the model server builds it
    rows = iris.data[[0, 60, 120]].tolist()
    prediction = model.predict(rows)
    result = {
        "run_id": run.id,
        "model_class": run.manifest["model"]["class"],
        "prediction": prediction,
        "same_as_original": prediction == clf.predict(iris.data[[0, 60, 120]]).tolist(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
