"""The typed results of a target: each prints, with --output json, the object the commands always printed."""

from __future__ import annotations

import json

from vci.deploy.target import DeployResult, Removal, Status


def deployed(**extra) -> DeployResult:
    core = {"environment": "staging", "status": "deployed", "digest": "sha256:" + "a" * 64, "run_id": "r1"}
    return DeployResult(**core, release_id="r-1", endpoint="http://127.0.0.1:1", previous=None, **extra)


def test_a_deploy_result_prints_every_shared_field_and_only_the_extras_its_target_filled():
    local = deployed().to_json()
    assert set(local) == {"environment", "status", "digest", "run_id", "release_id", "endpoint", "previous"}
    assert local["previous"] is None  # a shared field is printed even when empty
    plan = deployed(image="reg/ml@sha256:" + "a" * 64, dry_run=True, diff="+x", prune=[]).to_json()
    assert plan["image"].startswith("reg/ml@") and plan["dry_run"] is True and plan["prune"] == []
    assert "changes" not in plan
    json.dumps(plan)  # plain JSON, nothing needs a default= to print


def test_a_status_of_nothing_deployed_is_only_its_environment_and_state():
    empty = Status(environment="prod", state="not-deployed")
    assert empty.to_json() == {"environment": "prod", "state": "not-deployed"} and not empty.deployed
    cluster = Status(environment="prod", state="not-deployed", namespace="ml").to_json()
    assert cluster == {"environment": "prod", "state": "not-deployed", "namespace": "ml"}


def test_a_ready_status_prints_its_shared_fields_even_when_unknown():
    ready = Status(environment="prod", state="ready", digest="sha256:" + "b" * 64, endpoint="http://x", pid=7)
    printed = ready.to_json()
    assert printed["run_id"] is None and printed["release_id"] is None and printed["pid"] == 7
    assert "namespace" not in printed and "replicas" not in printed and ready.deployed


def test_a_removal_says_what_was_removed():
    assert Removal(environment="prod", digest="sha256:c", release_id="r-2").to_json() == {
        "environment": "prod",
        "digest": "sha256:c",
        "release_id": "r-2",
        "status": "removed",
    }
