"""Run by a real BentoML (its own virtualenv, VCI_BENTOML_PYTHON) with BENTOML_HOME set: save the models vci
imports into BentoML's model store and print what BentoML itself predicts."""

import json
import warnings

import bentoml
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

warnings.filterwarnings("ignore")
X, y = load_iris(return_X_y=True)
clf = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
first = bentoml.sklearn.save_model(
    "iris_forest", clf, signatures={"predict": {"batchable": True}}, labels={"team": "ml"}
)
latest = bentoml.sklearn.save_model(
    "iris_forest", LogisticRegression(max_iter=500).fit(X, y), signatures={"predict_proba": {"batchable": True}}
)
pickled = bentoml.picklable_model.save_model("scaled", {"factor": 2.0})
rows = X[[0, 70, 83, 133]]  # two near the versicolor/virginica border
print(
    json.dumps(
        {
            "first": str(first.tag),
            "latest": str(latest.tag),
            "pickled": str(pickled.tag),
            "rows": rows.tolist(),
            "first_predictions": bentoml.sklearn.load_model(first.tag).predict(rows).tolist(),
            "latest_probabilities": bentoml.sklearn.load_model("iris_forest:latest").predict_proba(rows).tolist(),
        }
    )
)
