"""The whole journey on the embedded default (local store, local deployments, no servers to install):
train, log, load back, deploy to staging, predict, smoke-test, promote to production, ship a second
version the same way, roll production back, and print the release history.

Run from the repository root:  python examples/iris/main.py
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


def log_version(c: float):
    weights = train(os.environ.get("IRIS_OUT", "out"), c=c, name=f"model-c{c}.joblib")
    run = vci.init(project="iris")
    run.log_artifact("weights", str(weights))
    run.log_model(Model, artifacts=["weights"])
    run.log_requirements(str(HERE / "requirements.txt"))
    examples = json.loads((HERE / "examples.json").read_text())
    run.log_examples(examples["inputs"], examples["expected_outputs"])
    version = run.commit()
    say(f"logged run {run.id} (model version {version[:19]})")
    return run


def say(text: str) -> None:
    print(text, file=sys.stderr)


def main() -> dict:
    from vci.release.promote import promote
    from vci.release.rollback import history, rollback
    from vci.release.smoke import smoke_test

    first = log_version(c=1.0)
    loaded = vci.get_run(first.id).load_model().predict([[5.1, 3.5, 1.4, 0.2]])  # exactly as the server builds it
    say(f"loaded back from the store: {loaded}")
    deployment = first.deploy(wait=True)  # default environment: staging (a local process)
    say(f"deployed to staging at {deployment.endpoint}")
    served = first.get_deployed_model().predict([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    say(f"served prediction: {served}")
    settings = first.settings
    smoke = smoke_test(settings, "staging")  # the logged examples against the live endpoint
    say(f"smoke test on staging: {'passed' if smoke['passed'] else 'FAILED'}")
    promoted = promote(settings, "staging", "production", digest=smoke["digest"])  # what was tested ships
    say(f"promoted {promoted['digest'][:19]} to production ({promoted['outcome']})")

    second = log_version(c=0.5)  # a new version takes the same road
    second.deploy(wait=True)
    tested = smoke_test(settings, "staging")
    again = promote(settings, "staging", "production", digest=tested["digest"])
    say(f"promoted {again['digest'][:19]} to production ({again['outcome']})")
    back = rollback(settings, "production")  # production returns to the first version
    say(f"rolled production back to {back['digest'][:19]}")
    releases = history(settings, "production")["releases"]
    ours = {promoted["release_id"], again["release_id"], back["release_id"]}  # a store may hold earlier runs' too
    say(
        f"production history: {len(releases)} releases; stop everything with: "
        "vci undeploy --env staging; vci undeploy --env production"
    )
    result = {
        "run_id": first.id,
        "version": first.version,
        "loaded_prediction": loaded,
        "endpoint": deployment.endpoint,
        "served_prediction": served,
        "smoke_test_passed": smoke["passed"],
        "promoted": promoted["outcome"],
        "production_after_rollback": back["digest"],
        "rolled_back_to_first": back["digest"] == promoted["digest"],
        "releases": len([r for r in releases if r["release_id"] in ours]),
        "releases_in_ledger": len(releases),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
