"""Nearest neighbours, the shape the documentation leads with: a class whose __init__ loads two logged
artifacts (a saved encoder directory and an index file), deployed locally and asked for predictions.

Run from anywhere:  python examples/nearest_neighbors/main.py
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

QUERIES = [[5.0, 3.4, 1.5, 0.2], [6.9, 3.1, 5.4, 2.1]]


def main() -> dict:
    encoder_dir, index = train(os.environ.get("NN_OUT", "out"))
    run = vci.init(project="nearest-neighbors")
    run.log_artifact("encoder", str(encoder_dir))  # a directory: archived reproducibly
    run.log_artifact("index", str(index))  # a file
    run.log_model(Model, artifacts=["encoder", "index"])
    run.log_requirements(["scikit-learn", "numpy"])  # pinned to the versions installed now
    run.log_examples([QUERIES[:1], QUERIES[1:]])  # what `vci test` sends to a deployment
    deployment = run.deploy(wait=True)  # commits the run; staging: a local server
    print(f"deployed run {run.id} to {deployment.environment} at {deployment.endpoint}", file=sys.stderr)
    try:
        served = run.get_deployed_model().predict(QUERIES)
    finally:
        undeploy(run.settings, deployment.environment)  # stop the server: this is an example
    result = {
        "run_id": run.id,
        "species": [answer["species"] for answer in served],
        "nearest_ids": [[n["id"] for n in answer["neighbours"]] for answer in served],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
