"""scikit-learn: log a fitted pipeline itself (no Model class), load it back as the server does, predict
from named columns.

Run from anywhere:  python examples/sklearn/main.py
"""

import json

from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import vci


def main() -> dict:
    wine = load_wine(as_frame=True)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(wine.data, wine.target)
    run = vci.init(project="sklearn-example")
    run.log_model(clf)  # saved with joblib, scikit-learn/numpy/pandas pinned
    run.commit()
    model = vci.get_run(run.id).load_model()  # built exactly as the model server builds it
    query = wine.data.iloc[[0, 70, 150]].to_dict("list")  # a dict of columns, in any order
    prediction = model.predict(query)
    result = {
        "run_id": run.id,
        "model_class": run.manifest["model"]["class"],
        "prediction": prediction,
        "same_as_original": prediction == clf.predict(wine.data.iloc[[0, 70, 150]]).tolist(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
