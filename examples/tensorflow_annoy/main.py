"""TensorFlow + annoy, exactly as the documentation leads with: a class whose __init__ loads a SavedModel and a
nearest-neighbour index, logged as two artifacts, deployed locally and asked for predictions.

Run from anywhere:  python examples/tensorflow_annoy/main.py
"""

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from model import Model  # noqa: E402
from train import train  # noqa: E402

import vci  # noqa: E402
from vci.deploy import undeploy  # noqa: E402

QUERIES = [[0.1, -0.2, 0.0, 0.3], [2.9, 3.2, 0.1, -0.1], [0.2, 2.8, 3.1, 2.9]]


def log(run, out_dir: str) -> None:
    """The artifacts, the model and its requirements, in the documentation's order and names."""
    saved_model, index = train(out_dir)
    run.log_artifact("tensorflow_saved_model", str(saved_model))  # a directory: archived reproducibly
    run.log_artifact("nearest_neighbor_index", str(index))  # a file
    run.log_model(Model, artifacts=["tensorflow_saved_model", "nearest_neighbor_index"])
    run.log_requirements(["annoy", "tensorflow"])  # tensorflow: the CPU build when that is what is installed


def main() -> dict:
    run = vci.init(project="tensorflow-annoy")
    log(run, os.environ.get("TFANNOY_OUT", "out"))
    deployment = run.deploy(wait=True)  # commits the run; staging: a local server
    print(f"deployed run {run.id} to {deployment.environment} at {deployment.endpoint}", file=sys.stderr)
    try:
        served = run.get_deployed_model().predict(QUERIES)
    finally:
        undeploy(run.settings, deployment.environment)  # stop the server: this is an example
    result = {
        "run_id": run.id,
        "requirements": sorted(r.split("==")[0] for r in run.manifest["requirements"]),
        "nearest": [answer["nearest"] for answer in served],
        "distances": [answer["distances"] for answer in served],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
