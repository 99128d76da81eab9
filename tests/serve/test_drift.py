"""Drift series and the release/track labels: the pure core, then a real server's /metrics."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from vci.errors import UsageError
from vci.release.canary import parse_metrics
from vci.serve import drift
from vci.serve.drift import Drift, learn_features, learn_output
from vci.serve.metrics import Metrics, labelled

from .conftest import REPO, build_model_dir, http_call, post_json
from .models import RowWidthModel, SumModel

IRIS_EXAMPLES = {"inputs": [[[4.0, 2.0, 1.0, 0.1]], [[8.0, 4.0, 7.0, 2.5]]], "expected_outputs": [[7.1], [21.5]]}
SAMPLE = re.compile(r"^(\w+)\{([^}]*)\} (\S+)$")


def series(text: str, name: str) -> dict[tuple, float]:
    """``{sorted label pairs without release/track: value}`` of one metric in an exposition."""
    found = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and match.group(1) == name:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            found[tuple(sorted((k, v) for k, v in labels.items() if k not in ("release", "track")))] = float(
                match.group(3)
            )
    return found


def test_features_and_bounds_are_learnt_from_examples_and_the_schema():
    manifest = {
        "examples": {"inputs": [{"age": 20, "city": "x"}, {"age": 60, "height": 1.5}]},
        "schemas": {"input": {"type": "object", "properties": {"age": {"type": "integer", "maximum": 120}}}},
    }
    features = learn_features(manifest)
    assert sorted(features) == ["age", "height"]  # "city" is not a number
    assert features["age"][0] == 20 and features["age"][-1] == 120 and len(features["age"]) == drift.BINS + 1
    assert features["height"] == (1.5,)
    assert sorted(learn_features({"examples": IRIS_EXAMPLES})) == ["0", "1", "2", "3"]
    assert learn_output({"examples": IRIS_EXAMPLES}) == drift.bounds_between(7.1, 21.5)
    assert learn_features({"examples": None}) == {} and learn_output({}) is None


def test_windowed_stats_histogram_and_classes():
    watch = Drift({"0": (0.0, 5.0, 10.0), "1": (0.0, 1.0)})
    now = [1000.0]
    watch.clock = lambda: now[0]
    watch.offer([[1.0, 0.5], [7.0, 3.0]], ["a", "b"])
    watch.offer([2.0, True], 1)  # one row; a boolean is not a feature value; 1 is a class
    watch.offer({"0": 99.0, "zzz": 5.0}, 2.5)  # an unknown feature is not counted; a float output is a value
    text = "\n".join(watch.render())
    assert series(text, "vci_feature_window_count")[(("feature", "0"),)] == 4
    assert series(text, "vci_feature_window_mean")[(("feature", "0"),)] == pytest.approx((1 + 7 + 2 + 99) / 4)
    assert series(text, "vci_feature_window_min")[(("feature", "1"),)] == 0.5
    assert series(text, "vci_feature_window_max")[(("feature", "0"),)] == 99.0
    buckets = series(text, "vci_feature_value_bucket")
    assert [buckets[(("feature", "0"), ("le", le))] for le in ("0.0", "5.0", "10.0", "+Inf")] == [0, 2, 3, 4]
    classes = series(text, "vci_prediction_class_total")
    assert classes == {(("class", "a"),): 1, (("class", "b"),): 1, (("class", "1"),): 1}
    assert series(text, "vci_prediction_value_count") == {} and "vci_prediction_value_count 1" in text
    now[0] += drift.WINDOW + 1  # the window moves on: its gauges empty, the histogram keeps counting
    text = "\n".join(watch.render())
    assert series(text, "vci_feature_window_count")[(("feature", "0"),)] == 0
    assert (("feature", "0"),) not in series(text, "vci_feature_window_mean")
    assert series(text, "vci_feature_value_count")[(("feature", "0"),)] == 4


def test_each_poll_takes_a_sample_and_counts_the_rest_skipped(monkeypatch):
    monkeypatch.setattr(drift, "SAMPLE", 2)
    watch = Drift({"0": (0.0,)})
    for _ in range(5):
        watch.offer([1.0], 0)
    text = "\n".join(watch.render())
    assert "vci_drift_skipped_total 3" in text and 'vci_feature_value_count{feature="0"} 2' in text
    for _ in range(3):  # the next poll takes its own sample
        watch.offer([1.0], 0)
    text = "\n".join(watch.render())
    assert "vci_drift_skipped_total 4" in text and 'vci_feature_value_count{feature="0"} 4' in text


def test_every_sample_carries_release_and_track_and_canary_parsing_still_works():
    metrics = Metrics(("/predict",), release="r-42", track="canary")
    metrics.started()
    metrics.finished("/predict", 200, 0.003)
    metrics.started()
    metrics.finished("/predict", 500, 0.004)
    text = metrics.render().decode()
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert samples and all('{release="r-42",track="canary"' in line for line in samples)
    assert 'vci_model_ready{release="r-42",track="canary"} 0' in text
    snap = parse_metrics(text)
    assert (snap.total, snap.errors, snap.buckets[0.005]) == (2, 1, 2)
    assert labelled(["x 1", 'y{a="b"} 2'], 'release="none",track="stable"') == [
        'x{release="none",track="stable"} 1',
        'y{release="none",track="stable",a="b"} 2',
    ]


def test_a_served_regressor_exports_drift_with_its_release_and_track(start_server):
    server = start_server(
        SumModel, examples=IRIS_EXAMPLES, extra_env={"VCI_RELEASE_ID": "rel-7", "VCI_TRACK": "shadow"}
    )
    server.wait_state()
    for row in ([5.0, 3.0, 1.0, 0.2], [9.0, 3.0, 1.0, 0.2]):
        assert post_json(server, "/predict", [row])[0] == 200
    assert post_json(server, "/batch-predict", [[[6.0, 3.0, 1.0, 0.2]]])[0] == 200
    status, _, body = http_call(server, "GET", "/metrics")
    text = body.decode()
    assert status == 200
    assert 'vci_feature_window_count{release="rel-7",track="shadow",feature="0"} 3.0' in text
    assert series(text, "vci_feature_window_max")[(("feature", "0"),)] == 9.0
    assert series(text, "vci_feature_value_bucket")[(("feature", "0"), ("le", "+Inf"))] == 3  # 9.0 > 8.0
    assert series(text, "vci_feature_value_bucket")[(("feature", "0"), ("le", "8.0"))] == 2
    assert 'vci_prediction_value_count{release="rel-7",track="shadow"} 3' in text


def test_a_served_classifier_counts_its_classes(start_server):
    server = start_server(RowWidthModel, examples={"inputs": [[[1, 2]]], "expected_outputs": [[2]]})
    server.wait_state()
    post_json(server, "/predict", [[1, 2], [3, 4], [5, 6, 7]])
    text = http_call(server, "GET", "/metrics")[2].decode()
    assert series(text, "vci_prediction_class_total") == {(("class", "2"),): 2, (("class", "3"),): 1}
    assert 'release="none",track="stable"' in text


def test_an_unknown_track_stops_the_start(tmp_path):
    build_model_dir(tmp_path / "m", SumModel)
    proc = subprocess.run(
        [sys.executable, "-m", "vci.serve", "--model-dir", str(tmp_path / "m"), "--port", "0"],
        env={**os.environ, "PYTHONPATH": str(REPO), "VCI_TRACK": "blue"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == UsageError.exit_code
    assert "VCI_TRACK='blue' is not a track" in proc.stderr and "Traceback" not in proc.stderr


def test_v2_tensors_become_rows_and_outputs():
    import numpy

    rows = numpy.array([[1.0, 2.0], [3.0, 4.0]], dtype="float32")
    assert drift.tensor_rows(rows) == [[1.0, 2.0], [3.0, 4.0]] and drift.tensor_rows({"x": rows[0]}) == [[1.0, 2.0]]
    columns = {"age": numpy.array([20, 30]), "height": numpy.array([[1.5], [1.7]]), "image": numpy.zeros((2, 3))}
    assert drift.tensor_rows(columns) == [{"age": 20, "height": 1.5}, {"age": 30, "height": 1.7}]
    assert drift.tensor_outputs(numpy.array([[0], [2]])) == [0, 2] and drift.tensor_outputs({"a": 1, "b": 2}) == []
    assert drift.tensor_outputs([numpy.float32(1.5)]) == [1.5] and drift.tensor_outputs({"p": numpy.int64(3)}) == [3]


def test_v2_infer_over_rest_and_grpc_is_counted_like_predict(start_server):
    from .test_payloads import grpc_call, model_infer

    server = start_server(SumModel, examples=IRIS_EXAMPLES, grpc=True)
    server.wait_state()
    tensor = {"name": "input-0", "datatype": "FP32", "shape": [2, 4], "data": [5.0, 3.0, 1.0, 0.2, 9.0, 3.0, 1.0, 0.2]}
    assert post_json(server, "/v2/models/serve-tests/infer", {"inputs": [tensor]})[0] == 200
    infer = "/inference.GRPCInferenceService/ModelInfer"
    assert grpc_call(server, infer, model_infer([[6.0, 3.0, 1.0, 0.2]]), "v2-drift")[1] == "OK"
    text = http_call(server, "GET", "/metrics")[2].decode()
    assert series(text, "vci_feature_window_count")[(("feature", "0"),)] == 3.0
    assert series(text, "vci_feature_window_max")[(("feature", "0"),)] == 9.0
    assert series(text, "vci_feature_value_bucket")[(("feature", "0"), ("le", "+Inf"))] == 3  # 9.0 > 8.0
    assert 'vci_prediction_value_count{release="none",track="stable"} 3' in text
