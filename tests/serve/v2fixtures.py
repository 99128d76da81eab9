"""An iris model as vci logs it (the scikit-learn adapter), its model directory, and a running V2 server on it."""

from __future__ import annotations

from pathlib import Path

import vci
from vci.fetch import fetch_model_dir

from .conftest import ServerProcess

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]  # a setosa (class 0)


def iris_classifier():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=300).fit(features, labels), features


def iris_model_dir(tmp: Path, classifier=None, project: str = "iris") -> tuple[Path, str]:
    """Log the iris classifier as a run of ``project`` in a local store under ``tmp``; fetch its model
    directory as `vci serve` does; return it and the model digest."""
    run = vci.init(project, store=str(tmp / "store"))
    run.log_model(classifier if classifier is not None else iris_classifier()[0])
    run.commit()
    again = vci.get_run(run.id, store=str(tmp / "store"))
    return fetch_model_dir(again.store, again.manifest, tmp / "model"), again.version


def iris_server(tmp: Path, *args: str, grpc: bool = True) -> tuple[ServerProcess, str]:
    """A ready server of the iris run (gRPC too unless told), and its model digest."""
    model_dir, digest = iris_model_dir(tmp)
    (tmp / "run").mkdir()
    server = ServerProcess(model_dir, tmp / "run", grpc=grpc, args=args)
    server.wait_state()
    return server, digest
