"""Benchmark of adaptive batching: /predict throughput with and without it, for a model whose per-call cost dominates.

The model spends ``--overhead-ms`` per call (a sleep: the fixed cost of a GPU launch, a remote feature
lookup or a framework's dispatch) and next to nothing per item, so a batch of N costs about what one item
does. The same server (one worker, 4 pool threads) is measured with wrk at ``--connections`` concurrent
keep-alive connections, without batching and with ``--max-batch-size`` / ``--max-latency-ms``; prints
requests/s, p50 and p99 of each and the ratio, plus the batch sizes the server's metrics saw. Never asserts.

    python benchmarks/batching.py [--duration 5] [--connections 64] [--overhead-ms 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
_spec = importlib.util.spec_from_file_location("serve_benchmark", REPO / "benchmarks" / "serve.py")
assert _spec and _spec.loader
serve_benchmark = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serve_benchmark)  # its wrk driver, free port and readiness probe


class OverheadModel:
    """Costs VCI_BENCH_OVERHEAD_MS per call, whatever the number of items."""

    def __init__(self, artifacts):

        self.overhead = float(os.environ.get("VCI_BENCH_OVERHEAD_MS", "2")) / 1000

    def predict(self, data):

        time.sleep(self.overhead)
        return [sum(row) for row in data]

    def batch_predict(self, items):

        time.sleep(self.overhead)
        return [[sum(row) for row in data] for data in items]


def run(model_dir: Path, args, batch_size: int) -> dict:
    """wrk against one server process; its numbers and the mean batch size from /metrics."""
    flags = ("--max-batch-size", str(batch_size), "--max-latency-ms", str(args.max_latency_ms))
    env = {"VCI_BENCH_OVERHEAD_MS": str(args.overhead_ms)}
    proc, port = serve_benchmark.spawn_vci(model_dir, *flags, env=env)
    try:
        result = serve_benchmark.load_wrk(port, args.connections, args.duration)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        total, count = (re.search(rf"vci_batch_size_{k}(?:{{[^}}]*}})? ([\d.]+)", metrics) for k in ("sum", "count"))
        result["mean_batch"] = float(total.group(1)) / float(count.group(1)) if total and count else 1.0
        return result
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--overhead-ms", type=float, default=2.0)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-latency-ms", type=float, default=5.0)
    args = parser.parse_args()
    from serve.conftest import build_model_dir

    model_dir = Path(tempfile.mkdtemp()) / "model"
    build_model_dir(model_dir, OverheadModel)
    plain = run(model_dir, args, 0)
    batched = run(model_dir, args, args.max_batch_size)
    print(f"model: {args.overhead_ms:g} ms per call; wrk, {args.connections} connections, {args.duration:g} s each")
    label = f"batched (max {args.max_batch_size}, {args.max_latency_ms:g} ms)"
    for name, r in (("unbatched", plain), (label, batched)):
        print(
            f"  {name:34} {r['rps']:9.0f} req/s  p50 {r['p50']:6.2f} ms  p99 {r['p99']:6.2f} ms  "
            f"mean batch {r['mean_batch']:5.1f}  errors {r['errors']}"
        )
    print(f"  throughput ratio batched/unbatched: {batched['rps'] / plain['rps']:.1f}x")


if __name__ == "__main__":
    main()
