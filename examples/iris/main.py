"""The whole journey on the embedded default (local store, local deployment): train, log, load, deploy, predict.

Run from the repository root:  python examples/iris/main.py
"""

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import vci  # noqa: E402
from model import Model  # noqa: E402
from train import train  # noqa: E402


def main() -> dict:
    weights = train(os.environ.get("IRIS_OUT", "out"))
    run = vci.init(project="iris")
    run.log_artifact("weights", str(weights))
    run.log_model(Model, artifacts=["weights"])
    run.log_requirements(str(HERE / "requirements.txt"))
    examples = json.loads((HERE / "examples.json").read_text())
    run.log_examples(examples["inputs"], examples["expected_outputs"])
    version = run.commit()
    print(f"logged run {run.id} (model version {version})", file=sys.stderr)

    local = vci.get_run(run.id).load_model()            # built exactly as the server builds it
    loaded = local.predict([[5.1, 3.5, 1.4, 0.2]])
    print(f"loaded back from the store: {loaded}", file=sys.stderr)
    deployment = run.deploy(wait=True)                  # default environment: staging (a local process)
    print(f"deployed to {deployment['environment']} at {deployment['endpoint']}", file=sys.stderr)
    served = run.get_deployed_model().predict([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    print(f"served prediction: {served}  (stop it with: vci undeploy --env staging)", file=sys.stderr)
    result = {"run_id": run.id, "version": version, "loaded_prediction": loaded,
              "endpoint": deployment["endpoint"], "served_prediction": served}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
