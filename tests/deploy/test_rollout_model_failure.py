"""A model that cannot start fails its rollout as soon as a pod's log says so, explained in the model's own
file and line, and the previous version keeps serving: on the API test server, each pod a real model server
(tests/deploy/serving.py) whose self-test fails, or whose __init__ raises (the container exits and is
restarted with back-off, as the kubelet does)."""

import time

import pytest

from tests.build.models import BrokenInitScaler, BrokenScaler
from tests.deploy.serving import built
from vci.deploy import deploy, deployed_model, status, target_for
from vci.errors import DeployError


@pytest.mark.parametrize(
    ("cls", "what", "function"),
    [
        (
            BrokenScaler,
            "the model's self-test (model_test) failed: RuntimeError: self-test failed on purpose",
            "model_test",
        ),
        (
            BrokenInitScaler,
            "the model failed to load: ValueError: the factor file is from another model version",
            "__init__",
        ),
    ],
    ids=["self-test", "init"],
)
def test_a_model_that_cannot_start_fails_the_rollout_at_once_and_says_why(
    serving_settings, tmp_path, cls, what, function
):
    settings = serving_settings
    good = built(settings, tmp_path, "2")
    deploy(settings, good, "staging")
    bad = built(settings, tmp_path, "3", cls)
    started = time.monotonic()
    with pytest.raises(DeployError) as failed:
        deploy(settings, bad, "staging")  # no timeout: the progress deadline (60 s here) would end it
    seconds = time.monotonic() - started
    message = str(failed.value)
    lines = [line.strip() for line in message.splitlines()]
    assert seconds < 30, f"took {seconds:.0f}s: the rollout waited for its deadline instead of reading the pod's log"
    assert lines[0].startswith("rollout of scaler-staging failed: the model of the new version cannot start (pod ")
    assert f"rolled back to {good}" in lines[0]
    assert what in lines
    assert any(line.startswith('File "models.py", line ') and line.endswith(f", in {function}") for line in lines)
    assert "<dynamic-code>" not in message and " | " not in message and '{"ts"' not in message

    now = status(settings, "staging")  # the new version never became the deployed one
    assert (now.state, now.image) == ("ready", good)
    assert deployed_model(settings, "staging").predict([1]) == [2.0]
    target_for(settings, "staging").undeploy()
