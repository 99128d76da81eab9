"""Benchmark of the drift series: /predict throughput with this tree's server against another revision's, same run.

The iris model of benchmarks/serve.py with logged examples (so the server watches its four features and
its classes), one worker, wrk at ``--connections`` (8) keep-alive connections for ``--duration`` seconds
per measurement, alternating between the server of ``--before`` (a git revision, unpacked with
``git archive`` into a temporary directory; default ``lead``, which had no drift series until this
branch was merged: name the revision before it after that) and this tree's,
for ``--rounds`` rounds. Prints requests/s, p50 and p99 (medians), the ratio against before and the
server's CPU time per request (user + system, from /proc). Never asserts.

    python benchmarks/drift.py [--before lead] [--duration 5] [--connections 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
_spec = importlib.util.spec_from_file_location("serve_benchmark", REPO / "benchmarks" / "serve.py")
assert _spec and _spec.loader
serve_benchmark = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serve_benchmark)  # its iris model directory, wrk driver, free port and probe
_spec = importlib.util.spec_from_file_location("payload_benchmark", REPO / "benchmarks" / "payloads.py")
assert _spec and _spec.loader
payload_benchmark = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(payload_benchmark)  # its measurement of one server process

EXAMPLES = {"inputs": [[[4.3, 2.0, 1.0, 0.1]], [[7.9, 4.4, 6.9, 2.5]]], "expected_outputs": [[0], [2]]}


def model_with_examples(root: Path) -> Path:
    from vci.modeldir import encode_manifest

    model_dir = serve_benchmark.build_model_dir(root)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    (model_dir / "manifest.json").write_bytes(encode_manifest({**manifest, "examples": EXAMPLES}))
    return model_dir


def unpack(revision: str) -> Path:
    target = Path(tempfile.mkdtemp(prefix="vci-before-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="lead")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model_dir = model_with_examples(Path(tempfile.mkdtemp(prefix="vci-bench-")) / "model")
    sources = {f"before ({args.before})": unpack(args.before), "this tree": REPO}
    os.chdir(tempfile.mkdtemp())  # `python -m` puts the working directory first: it must hold no vci/
    runs: dict[str, list[dict]] = {name: [] for name in sources}
    for _ in range(args.rounds):
        for name, source in sources.items():  # a server of that source: its PYTHONPATH wins over REPO's
            runs[name].append(payload_benchmark.measure(model_dir, args, {"PYTHONPATH": str(source)}))
    payload_benchmark.print_runs(runs, args, lambda results: f"rps per round {[round(r['rps']) for r in results]}")


if __name__ == "__main__":
    main()
