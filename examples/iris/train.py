"""Train the iris classifier and save it to out/model.joblib."""

import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def train(out_dir: str = "out", c: float = 1.0, name: str = "model.joblib") -> Path:
    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500, C=c).fit(X, y)
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(clf, path)
    return path


if __name__ == "__main__":
    print(train(sys.argv[1] if len(sys.argv) > 1 else "out"))
