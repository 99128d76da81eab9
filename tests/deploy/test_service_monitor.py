"""`service_monitor`: the ServiceMonitor `vci render` prints, checked against the Prometheus Operator's own
schema (tests/deploy/prometheus_operator_schemas, unknown fields refused as `kubectl --validate=strict`
does), and the track variable a canary's pods get."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.deploy.test_kserve import IMAGE, unknown_fields
from tests.test_cli import vci
from vci.deploy.manifests import DeploySpec, render_deployment, render_service_monitor

STACK = {"release": "kube-prometheus-stack"}  # what kube-prometheus-stack's Prometheus selects by default
SCHEMA = json.loads((Path(__file__).with_name("prometheus_operator_schemas") / "servicemonitor-v1.json").read_text())


def problems(obj: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    return errors + [f"unknown field {p}" for p in unknown_fields(obj, SCHEMA)]


def rendered(tmp_path, **staging) -> list[dict]:
    config = {"project": "iris", "environments": {"staging": {"target": "kubernetes", "namespace": "ml", **staging}}}
    (tmp_path / "vci.yaml").write_text(yaml.safe_dump(config))
    return json.loads(vci("render", IMAGE, "--env", "staging", "--output", "json", cwd=tmp_path).stdout)["objects"]


@pytest.mark.parametrize(
    "setting, interval, labels",
    [(True, "30s", {}), ({"interval": "15s", "labels": STACK}, "15s", STACK)],
)
def test_the_service_monitor_matches_the_operators_schema_and_selects_the_service(tmp_path, setting, interval, labels):
    objects = {o["kind"]: o for o in rendered(tmp_path, service_monitor=setting)}
    monitor, service = objects["ServiceMonitor"], objects["Service"]
    assert problems(monitor) == []
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["metadata"]["namespace"] == "ml"
    assert labels.items() <= monitor["metadata"]["labels"].items()
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()  # it selects the environment's Service
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ml"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
    assert (endpoint["path"], endpoint["interval"]) == ("/metrics", interval)


def test_without_the_setting_there_is_none(tmp_path):
    assert "ServiceMonitor" not in [o["kind"] for o in rendered(tmp_path)]
    assert "ServiceMonitor" not in [o["kind"] for o in rendered(tmp_path, service_monitor=False)]


def test_the_schema_check_refuses_what_the_operator_refuses():
    monitor = render_service_monitor(DeploySpec("iris", "staging", "ml", IMAGE, service_monitor=True))
    assert monitor is not None and problems(monitor) == []
    monitor["spec"]["endpoints"][0]["interval"] = "30 seconds"
    monitor["spec"]["endpoints"][0]["scrapeEvery"] = "30s"
    del monitor["spec"]["selector"]
    found = "\n".join(problems(monitor))
    assert "'30 seconds' does not match" in found and "scrapeEvery" in found and "'selector' is a required" in found


def test_only_canary_pods_get_a_track_variable():
    def env(track: str) -> dict:
        container = render_deployment(DeploySpec("iris", "staging", "ml", IMAGE, track=track))["spec"]["template"]
        return {e["name"]: e["value"] for e in container["spec"]["containers"][0]["env"]}

    assert env("canary")["VCI_TRACK"] == "canary"
    assert "VCI_TRACK" not in env("stable")  # a stable pod's template is unchanged by this release
    canary = DeploySpec("iris", "staging", "ml", IMAGE, track="canary", service_monitor=True)
    assert render_service_monitor(canary) is None  # the stable one's selects the canary pods too
