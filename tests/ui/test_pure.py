"""The app's pure parts: rates between two scrapes, SVG charts, release diffs, the same-origin rule."""

import pytest

from vci.ui.charts import drift_charts, drift_points, interval, line_chart
from vci.ui.diff import diff_manifests, layer_rows
from vci.ui.guard import Guard, Refused, same_origin


def exposition(ok: int, errors: int, fast: int, batches: int = 0, items: int = 0) -> str:
    """A vci server's /metrics: ``fast`` of the ok requests under 5 ms, the rest under 100 ms."""
    total = ok + errors
    lines = [
        f'vci_requests_total{{route="/predict",status="200"}} {ok}',
        f'vci_requests_total{{route="/predict",status="500"}} {errors}',
        'vci_requests_total{route="/healthz",status="200"} 999',  # not a model route: not counted
        f'vci_request_duration_seconds_bucket{{route="/predict",le="0.005"}} {fast}',
        f'vci_request_duration_seconds_bucket{{route="/predict",le="0.1"}} {total}',
        f'vci_request_duration_seconds_bucket{{route="/predict",le="+Inf"}} {total}',
        f'vci_request_duration_seconds_sum{{route="/predict"}} {total * 0.01}',
    ]
    if batches:
        lines += [f"vci_batch_size_sum {items}", f"vci_batch_size_count {batches}"]
    return "\n".join(lines) + "\n"


def test_interval_gives_rates_quantiles_and_batch_size():
    point = interval((100.0, {"a": exposition(10, 0, 10, 2, 4)}), (110.0, {"a": exposition(100, 10, 10, 12, 54)}))
    assert point.rate == pytest.approx(10.0)  # 100 more requests in 10 s
    assert point.error_rate == pytest.approx(0.1)
    assert 5 < point.p50_ms < 100 and 5 < point.p90_ms <= 100  # none of the new ones was under 5 ms
    assert point.batch_size == pytest.approx(5.0)  # 50 items in 10 batches


def test_a_restarted_server_counts_from_zero():
    point = interval((0.0, {"a": exposition(500, 0, 500)}), (5.0, {"a": exposition(20, 5, 25)}))
    assert point.rate == pytest.approx(5.0) and point.error_rate == pytest.approx(0.2)
    idle = interval((0.0, {"a": exposition(20, 5, 25)}), (5.0, {"a": exposition(20, 5, 25)}))
    assert (idle.rate, idle.error_rate, idle.p90_ms, idle.batch_size) == (0.0, None, None, None)


def test_pods_are_differenced_one_by_one_and_a_new_pod_counts_from_its_first_scrape():
    before = {"pod-1": exposition(1000, 0, 1000), "pod-2": exposition(10, 0, 10)}
    after = {"pod-1": exposition(1010, 0, 1010), "pod-2": exposition(20, 10, 30), "pod-3": exposition(99, 0, 99)}
    point = interval((0.0, before), (10.0, after))
    assert point.rate == pytest.approx(3.0)  # 10 + 20 new requests; pod-3's 99 are not new to this interval
    assert point.error_rate == pytest.approx(10 / 30)


def test_line_chart_scales_to_its_maximum_and_escapes_its_title():
    svg = line_chart("<b>rate</b>", "req/s", [(0.0, 1.0), (1.0, None), (2.0, 4.0)], width=100, height=100)
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    points = svg.split('points="')[1].split('"')[0].split()
    assert len(points) == 2  # the gap is left out
    (x0, y0), (x1, y1) = (tuple(map(float, p.split(","))) for p in points)
    assert x0 < x1 and y1 == pytest.approx(100 - 16 - (100 - 40)) and y0 > y1  # the maximum at the top
    assert "no data yet" in line_chart("errors", "share", [(0.0, None)])


def test_diff_lists_requirements_added_removed_and_changed():
    before = {"id": "a", "artifacts": {"w": {"digest": "sha256:1", "size": 3, "kind": "file"}},
              "lock": [{"name": "numpy", "version": "1.0"}, {"name": "six", "version": "1.16"}]}  # fmt: skip
    after = {"id": "b", "artifacts": {"w": {"digest": "sha256:2", "size": 3, "kind": "file"}},
             "lock": [{"name": "numpy", "version": "2.0"}, {"name": "scipy", "version": "1.1"}],
             "schemas": {"input": {"type": "array"}}}  # fmt: skip
    found = diff_manifests(before, after)
    assert {c.name: c.kind for c in found.requirements} == {"numpy": "changed", "scipy": "added", "six": "removed"}
    assert [(c.name, c.kind) for c in found.changed("artifacts")] == [("w", "changed")]
    assert [(c.name, c.kind) for c in found.schema] == [("input", "added")]
    assert found.layers is None
    rows = layer_rows([{"digest": "sha256:a", "size": 1}], [{"digest": "sha256:a", "size": 1}, {"digest": "x"}])
    assert [c.kind for c in rows] == ["same", "added"]


@pytest.mark.parametrize(
    ("origin", "referer", "bearer", "allowed"),
    [
        ("http://127.0.0.1:8765", None, False, True),
        ("http://127.0.0.1:8766", None, False, False),  # another port is another origin
        ("https://127.0.0.1:8765", None, False, False),
        ("null", None, False, False),  # a sandboxed frame or a file: page
        (None, "http://127.0.0.1:8765/env/x", False, True),
        (None, "http://evil.example/", False, False),
        (None, None, False, False),
        (None, None, True, True),  # a script with the token: no browser, no cookie to ride on
    ],
)
def test_same_origin(origin, referer, bearer, allowed):
    assert same_origin(origin, referer, "http://127.0.0.1:8765/", bearer_used=bearer) is allowed


def test_csrf_tokens_are_bound_to_their_session():
    guard = Guard(token="t" * 20, actions=True)
    one, two = guard.login("t" * 20), guard.login("t" * 20)
    assert guard.csrf(one) != guard.csrf(two) and guard.csrf("forged") is None
    here = {"origin": "http://h", "referer": None, "host_url": "http://h/", "bearer": None}
    guard.check_action(session=one, csrf=guard.csrf(one), **here)
    with pytest.raises(Refused, match="CSRF"):
        guard.check_action(session=one, csrf=guard.csrf(two), **here)
    with pytest.raises(Refused, match="wrong token"):
        guard.login("t" * 19)


def test_drift_of_two_servers_is_combined_per_feature_and_drawn_as_a_band():
    def server(count, mean, low, high):
        labels = 'feature="petal \\"w\\"",release="r1",track="stable"'
        return "\n".join(
            [
                f"vci_feature_window_count{{{labels}}} {count}",
                f"vci_feature_window_mean{{{labels}}} {mean}",
                f"vci_feature_window_min{{{labels}}} {low}",
                f"vci_feature_window_max{{{labels}}} {high}",
                'vci_feature_window_count{feature="quiet"} 0.0',
            ]  # fmt: skip
        )

    series = drift_points([(10.0, {"a": server(1, 2.0, 2.0, 2.0), "b": server(3, 6.0, 1.0, 9.0)}), (11.0, {})])
    assert list(series) == ['petal "w"', "quiet"]
    point = series['petal "w"'][0]
    assert (point.count, point.mean, point.low, point.high) == (4, 5.0, 1.0, 9.0)  # mean weighted by count
    assert series["quiet"][0].mean is None and len(series['petal "w"']) == 1  # a scrape without the feature
    chart, quiet = drift_charts(series)
    assert "petal &#34;w&#34;" in chart and 'class="band"' in chart and "now 5</text>" in chart
    assert ">1</text>" in chart and ">9</text>" in chart  # the scale spans the band: least min to greatest max
    assert "no data yet" in quiet
