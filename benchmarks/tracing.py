"""Benchmark of tracing: /predict with tracing off and exporting over OTLP, against a server without tracing, same run.

The iris model of benchmarks/serve.py, one worker, wrk at ``--connections`` (8) keep-alive connections for
``--duration`` seconds per measurement, every request carrying a sampled ``traceparent``, in rounds of
three: the server of ``--before`` (a git revision unpacked with ``git archive``, default ``main``: name
the revision before tracing once it is merged), which ignores the header; this tree's with tracing off
(the header passed on into the response); and this tree's exporting every request's five spans to an
OTLP/HTTP receiver in its own process (tests/fakes/otlp_receiver.py, which decodes them with
opentelemetry-proto, so its CPU is charged to the machine as a real collector's would not be). Prints
requests/s, p50 and p99 (medians over ``--rounds``), the ratio against before, the server's CPU time per
request and the spans exported and dropped. Never asserts.

    python benchmarks/tracing.py [--before main] [--duration 5] [--connections 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", REPO / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


serve_benchmark = _load("serve")  # the iris model directory
payload_benchmark = _load("payloads")  # the measurement of one server process (wrk, CPU, counters)
drift_benchmark = _load("drift")  # a revision unpacked

TRACEPARENT = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
SPAN_COUNTERS = {"exported": "vci_trace_spans_exported_total", "dropped": "vci_trace_spans_dropped_total"}


def start_receiver() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "fakes" / "otlp_receiver.py")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model_dir = serve_benchmark.build_model_dir(Path(tempfile.mkdtemp(prefix="vci-bench-")) / "model")
    receiver, url = start_receiver()
    kinds = {
        f"before ({args.before})": {"PYTHONPATH": str(drift_benchmark.unpack(args.before))},
        "tracing off": {"PYTHONPATH": str(REPO)},
        "exporting": {"PYTHONPATH": str(REPO), "OTEL_EXPORTER_OTLP_ENDPOINT": url},
    }
    os.chdir(tempfile.mkdtemp())  # `python -m` puts the working directory first: it must hold no vci/
    runs: dict[str, list[dict]] = {name: [] for name in kinds}
    try:
        for _ in range(args.rounds):
            for name, env in kinds.items():
                runs[name].append(payload_benchmark.measure(model_dir, args, env, TRACEPARENT, SPAN_COUNTERS))
    finally:
        receiver.terminate()
        receiver.wait(10)
    report(runs, args)


def report(runs: dict[str, list[dict]], args) -> None:
    payload_benchmark.print_runs(runs, args, lambda results: (
        f"spans exported {sum(r['exported'] for r in results)}  dropped {sum(r['dropped'] for r in results)}  "
        f"rps per round {[round(r['rps']) for r in results]}"
    ))  # fmt: skip


if __name__ == "__main__":
    main()
