"""Run by a real MLflow (its own virtualenv, VCI_MLFLOW_PYTHON): write the models vci imports, print what
MLflow itself predicts for them. Usage: python peer_mlflow.py OUT_DIR (the tracking store: OUT_DIR/mlflow.db)."""

import json
import os
import sys
import warnings

import mlflow
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

warnings.filterwarnings("ignore")
out = sys.argv[1]
os.chdir(out)
os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"  # MLflow's own loader refuses pickles without it
mlflow.set_tracking_uri(f"sqlite:///{out}/mlflow.db")
X, y = load_iris(return_X_y=True, as_frame=True)
clf = LogisticRegression(max_iter=500).fit(X, y)
rows = X.iloc[[0, 60, 120, 149]]


class Scaler(mlflow.pyfunc.PythonModel):
    """A pyfunc python model with a context artifact: the sum of each row times the factor in the file."""

    def load_context(self, context):
        with open(context.artifacts["factor"]) as f:
            self.factor = float(f.read())

    def predict(self, context, model_input, params=None):
        return (model_input.sum(axis=1) * self.factor).tolist()


with mlflow.start_run() as skops_run:  # MLflow's default serialization (skops), registered as iris/1, probabilities
    mlflow.sklearn.log_model(
        clf, name="model", input_example=X.iloc[:2], registered_model_name="iris", pyfunc_predict_fn="predict_proba"
    )
with mlflow.start_run() as pickle_run:  # cloudpickle, reached as runs:/ID/model
    mlflow.sklearn.log_model(clf, name="model", serialization_format="cloudpickle", input_example=X.iloc[:2])
with open("factor.txt", "w") as f:
    f.write("2.5")
frame = pd.DataFrame({"a": [1.0, 2.0, -3.5], "b": [3.0, 4.0, 0.25]})
mlflow.pyfunc.save_model("pyfunc", python_model=Scaler(), artifacts={"factor": "factor.txt"}, input_example=frame)
mlflow.artifacts.download_artifacts("models:/iris/1", dst_path="sklearn_dir")  # a copy for the refusal tests

print(
    json.dumps(
        {
            "skops_run": skops_run.info.run_id,
            "pickle_run": pickle_run.info.run_id,
            "rows": rows.to_numpy().tolist(),
            "registered": mlflow.pyfunc.load_model("models:/iris/1").predict(rows).tolist(),
            "runs_model": mlflow.pyfunc.load_model(f"runs:/{pickle_run.info.run_id}/model").predict(rows).tolist(),
            "pyfunc_records": frame.to_dict(orient="records"),
            "pyfunc": mlflow.pyfunc.load_model("pyfunc").predict(frame),
        }
    )
)
