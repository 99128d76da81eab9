"""Adaptive batching against a real server process: fewer model calls, own answers, isolation, health, drain."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from vci.errors import UsageError
from vci.serve import run_server

from .conftest import build_model_dir, http_call, post_json, serve_until_exit, unlabelled
from .models import CountingBatchModel, EchoModel


def batching_server(start_server, size: int, latency_ms: float):
    server = start_server(CountingBatchModel, args=("--max-batch-size", str(size), "--max-latency-ms", str(latency_ms)))
    server.wait_state()
    return server


def concurrently(server, items: list) -> list[tuple[int, object]]:
    """POST each item to /predict at once (one connection each); (status, body) per item, in order."""
    with ThreadPoolExecutor(len(items)) as pool:
        answers = list(pool.map(lambda item: post_json(server, "/predict", item), items))
    return [(status, body) for status, _, body in answers]


def wait_in_flight(server, count: int) -> None:
    """Until ``count`` requests are in flight besides the /metrics request asking."""
    deadline = time.monotonic() + 10
    while f"vci_requests_in_flight {count + 1}\n" not in unlabelled(http_call(server, "GET", "/metrics")[2].decode()):
        assert time.monotonic() < deadline, f"never {count} requests in flight"
        time.sleep(0.01)


def test_concurrent_requests_become_fewer_model_calls_each_with_its_own_answer(start_server):
    server = batching_server(start_server, 8, 200)
    answers = concurrently(server, [{"n": i} for i in range(16)])
    assert [status for status, _ in answers] == [200] * 16
    assert [body["item"] for _, body in answers] == [{"n": i} for i in range(16)]  # type: ignore[index]
    calls = {body["call"] for _, body in answers}  # type: ignore[index]
    assert len(calls) < 16 and max(body["size"] for _, body in answers) > 1  # type: ignore[index]
    metrics = unlabelled(http_call(server, "GET", "/metrics")[2].decode())
    assert f"vci_batch_size_count {len(calls)}" in metrics
    assert "vci_batch_queue_seconds_count 16" in metrics
    assert 'vci_batch_size_bucket{le="+Inf"}' in metrics


def test_a_full_batch_goes_to_the_model_without_waiting_for_the_latency(start_server):
    server = batching_server(start_server, 4, 20_000)  # a lone request would wait 20 s
    started = time.monotonic()
    answers = concurrently(server, [1, 2, 3, 4])
    assert time.monotonic() - started < 5
    assert [body["item"] for _, body in answers] == [1, 2, 3, 4]  # type: ignore[index]
    assert {body["size"] for _, body in answers} == {4}  # type: ignore[index]


def test_one_bad_item_fails_only_its_own_request(start_server):
    server = batching_server(start_server, 8, 300)
    items = [0, 1, "bad", 3]
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda item: post_json(server, "/predict", item), items))
        not_json = pool.submit(http_call, server, "POST", "/predict", b"{oops", {"Content-Type": "application/json"})
        status, _, body = not_json.result()
    assert status == 400 and b"not valid JSON" in body
    statuses = [status for status, _, _ in answers]
    assert statuses == [200, 200, 500, 200]
    assert [answers[i][2] for i in (0, 1, 3)] == [{"single": 0}, {"single": 1}, {"single": 3}]
    assert "ValueError" in answers[2][2]["error"]  # type: ignore[index]
    server.wait_log(lambda r: r["event"] == "batch_predict_failed")


def test_health_and_metrics_answer_while_a_batch_is_slow(start_server):
    server = batching_server(start_server, 8, 1)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(post_json, server, "/predict", {"sleep": 2})
        wait_in_flight(server, 1)
        time.sleep(0.2)  # past the latency: the batch is in the model now
        for path in ("/healthz", "/readyz", "/metrics"):
            started = time.monotonic()
            assert http_call(server, "GET", path)[0] == 200
            assert time.monotonic() - started < 0.5, f"{path} waited for the slow batch"
        assert not slow.done()
        assert slow.result()[0] == 200


def test_fast_batches_run_on_the_loop_and_a_slow_one_sends_the_next_to_the_pool(start_server):
    server = batching_server(start_server, 8, 1)
    threads = [post_json(server, "/predict", i)[2]["thread"] for i in range(4)]  # type: ignore[index]
    assert threads[0].startswith("vci-predict")  # not timed yet: in the pool
    assert threads[1:] == ["MainThread"] * 3  # fast on average: on the loop, no hand-off to a thread
    assert post_json(server, "/predict", {"sleep": 0.1})[0] == 200
    after = post_json(server, "/predict", 5)[2]["thread"]  # type: ignore[index]
    assert after.startswith("vci-predict"), "a batch after a slow one still ran on the loop"


def test_sigterm_answers_the_queued_requests(start_server):
    server = batching_server(start_server, 32, 20_000)  # without the drain they would wait 20 s
    with ThreadPoolExecutor(3) as pool:
        queued = [pool.submit(post_json, server, "/predict", i) for i in range(3)]
        wait_in_flight(server, 3)
        server.proc.send_signal(signal.SIGTERM)
        answers = [future.result(timeout=10) for future in queued]
    assert [(status, body["item"]) for status, _, body in answers] == [(200, 0), (200, 1), (200, 2)]  # type: ignore[index]
    assert server.proc.wait(15) == 0


def test_a_model_without_batch_predict_cannot_be_batched(tmp_path):
    build_model_dir(tmp_path / "model", EchoModel, artifacts={"greeting": b"hi"})
    proc, records = serve_until_exit(tmp_path / "model", tmp_path / "work", "--max-batch-size", "8")
    assert proc.returncode == 14  # ServeError's exit code
    failure = next(r for r in records if r["event"] == "model_load_failed")
    assert "EchoModel has no batch_predict" in failure["error"]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("size, latency", [(-1, 0.005), (8, -0.001), (8, 61.0)])
def test_batching_settings_out_of_range_are_refused(tmp_path, size, latency):
    with pytest.raises(UsageError, match="out of range"):
        run_server(tmp_path, port=0, max_batch_size=size, max_latency=latency)
