"""CatBoost: log a trained CatBoostClassifier with string labels, load it back as the server does, predict.

Run from anywhere:  python examples/catboost/main.py
"""

import json

import catboost
from sklearn.datasets import load_iris

import vci


def main() -> dict:
    iris = load_iris()
    species = iris.target_names[iris.target]
    clf = catboost.CatBoostClassifier(iterations=30, depth=3, random_seed=0, verbose=False, allow_writing_files=False)
    clf.fit(iris.data, species)
    run = vci.init(project="catboost-example")
    run.log_model(clf)  # saved as CatBoost's binary model (model.cbm)
    run.commit()
    model = vci.get_run(run.id).load_model()  # built exactly as the model server builds it
    rows = iris.data[[0, 60, 120]].tolist()
    prediction = model.predict(rows)
    result = {
        "run_id": run.id,
        "model_class": run.manifest["model"]["class"],
        "prediction": prediction,
        "same_as_original": prediction == clf.predict(iris.data[[0, 60, 120]]).ravel().tolist(),  # (3, 1) there
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
