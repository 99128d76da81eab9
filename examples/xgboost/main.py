"""XGBoost: log a trained XGBClassifier itself, load it back as the server does, predict from rows.

Run from anywhere:  python examples/xgboost/main.py
"""

import json

import xgboost
from sklearn.datasets import load_breast_cancer

import vci


def main() -> dict:
    X, y = load_breast_cancer(return_X_y=True)
    clf = xgboost.XGBClassifier(n_estimators=10, max_depth=2, random_state=0).fit(X, y)
    run = vci.init(project="xgboost-example")
    run.log_model(clf)  # saved with save_model (UBJSON), xgboost-cpu/numpy pinned
    run.commit()
    model = vci.get_run(run.id).load_model()  # built exactly as the model server builds it
    rows = X[[0, 19, 20]].tolist()
    prediction = model.predict(rows)
    result = {
        "run_id": run.id,
        "model_class": run.manifest["model"]["class"],
        "prediction": prediction,
        "same_as_original": prediction == clf.predict(X[[0, 19, 20]]).tolist(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
