"""Benchmark of the drift series: /predict throughput with this tree's server against another revision's, same run.

The iris model of benchmarks/serve.py with logged examples (so the server watches its four features and
its classes), one worker, wrk at ``--connections`` (8) keep-alive connections for ``--duration`` seconds
per measurement, alternating between the server of ``--before`` (a git revision, unpacked with
``git archive`` into a temporary directory; default ``lead``, before the drift series) and this tree's,
for ``--rounds`` rounds. Prints requests/s, p50 and p99 (medians), the ratio against before, the
server's CPU time per request (user + system, from /proc), and the feature count this tree's /metrics
reports. Never asserts.

    python benchmarks/drift.py [--before lead] [--duration 5] [--connections 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
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
_spec.loader.exec_module(payload_benchmark)  # its /proc CPU reading

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


def measure(model_dir: Path, source: Path, args) -> dict:
    port = serve_benchmark.free_port()
    cmd = [sys.executable, "-m", "vci.serve", "--model-dir", str(model_dir), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--work-dir", tempfile.mkdtemp()]
    env = {**os.environ, "PYTHONPATH": str(source)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=source)
    try:
        deadline = time.monotonic() + 60
        while not serve_benchmark.post_predict(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not come up (exit {proc.poll()})")
            time.sleep(0.01)
        cpu = payload_benchmark._cpu_seconds(proc.pid)
        result = serve_benchmark.load_wrk(port, args.connections, args.duration)
        result["cpu_us"] = (
            (payload_benchmark._cpu_seconds(proc.pid) - cpu) * 1e6 / max(result["rps"] * args.duration, 1)
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        result["features"] = sum(line.startswith("vci_feature_window_count{") for line in text.splitlines())
        return result
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="lead")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model_dir = model_with_examples(Path(tempfile.mkdtemp(prefix="vci-bench-")) / "model")
    sources = {f"before ({args.before})": unpack(args.before), "this tree": REPO}
    runs: dict[str, list[dict]] = {name: [] for name in sources}
    for _ in range(args.rounds):
        for name, source in sources.items():
            runs[name].append(measure(model_dir, source, args))
    print(f"iris /predict, wrk {args.connections} connections, {args.duration:g} s x {args.rounds} rounds (medians)")
    first = statistics.median(r["rps"] for r in next(iter(runs.values())))
    for name, results in runs.items():
        rps, p50, p99, cpu = (statistics.median(r[key] for r in results) for key in ("rps", "p50", "p99", "cpu_us"))
        print(
            f"  {name:16} {rps:8.0f} req/s ({rps / first:4.2f}x)  p50 {p50:5.2f} ms  p99 {p99:5.2f} ms  "
            f"server CPU {cpu:4.0f} us/req  features watched {results[-1]['features']}  "
            f"rps per round {[round(r['rps']) for r in results]}"
        )


if __name__ == "__main__":
    main()
