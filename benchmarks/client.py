"""Benchmark of DeployedModel: its per-call overhead over a bare requests session, and what gzip buys.

Against the scripted echo server of the tests (a real HTTP server on 127.0.0.1), in one run:
  bare     ``requests.Session.post`` + ``json.dumps``/``.json()`` per call, the baseline;
  client   ``DeployedModel.predict`` (request id, headers, retry loop) on the same kind of server;
  gzip     a large batch (about 1 MB of JSON floats) with and without ``gzip_min_bytes``: bytes sent
           and round-trip time on loopback (where bandwidth is free, so gzip can only cost time here;
           the byte ratio is what a slow link or a proxy with a body limit would see).
Prints medians and ratios, never asserts.

    python benchmarks/client.py [--calls 500]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def per_call_seconds(call, calls: int, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean seconds per call of ``calls`` calls."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def bench_overhead(url: str, calls: int) -> None:
    import requests

    from vci.client import DeployedModel

    row = [[5.1, 3.5, 1.4, 0.2]]
    session = requests.Session()

    def bare():
        response = session.post(
            url + "/predict", data=json.dumps(row), headers={"Content-Type": "application/json"}, timeout=30
        )
        response.raise_for_status()
        return response.json()

    model = DeployedModel(url)
    bare(), model.predict(row)  # warm both connections
    base = per_call_seconds(bare, calls)
    ours = per_call_seconds(lambda: model.predict(row), calls)
    print(
        f"per call   bare requests {base * 1e3:7.3f} ms   DeployedModel {ours * 1e3:7.3f} ms   "
        f"ratio {ours / base:5.2f}x"
    )


def bench_gzip(server) -> None:
    from vci.client import DeployedModel

    batch = [[i * 0.1, i * 0.2, i / 3, i / 7] for i in range(20000)]
    plain, zipped = DeployedModel(server.url), DeployedModel(server.url, gzip_min_bytes=64 * 1024)
    times = {}
    for name, model in (("plain", plain), ("gzip", zipped)):
        model.predict(batch)
        times[name] = per_call_seconds(lambda model=model: model.predict(batch), 5)
    sent = {r.headers.get("Content-Encoding", "plain"): len(r.raw) for r in server.on("/predict")}
    print(
        f"gzip body  plain {sent['plain'] / 1e6:6.2f} MB   gzip {sent['gzip'] / 1e6:6.2f} MB   "
        f"bytes ratio {sent['gzip'] / sent['plain']:5.2f}x"
    )
    print(
        f"gzip time  plain {times['plain'] * 1e3:7.1f} ms   gzip {times['gzip'] * 1e3:7.1f} ms   "
        f"time ratio {times['gzip'] / times['plain']:5.2f}x (loopback)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    from fakes.flaky_server import FlakyServer

    with FlakyServer() as server:
        bench_overhead(server.url, args.calls)
    with FlakyServer() as server:
        bench_gzip(server)


if __name__ == "__main__":
    main()
