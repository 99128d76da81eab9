"""Benchmark of V2 infer: one iris row at concurrency 8 against vci's server and MLServer, in the same run.

Both serve the same file: a scikit-learn LogisticRegression that vci logs (its adapter saves it as
model.joblib), MLServer through mlserver-sklearn with inference in its server process
(``MLSERVER_PARALLEL_WORKERS=0``: its worker pool does not start with the uvloop pip brings). The same
JSON request (one FP64 row of shape [1, 4]) goes to ``/v2/models/iris/infer`` of each from wrk, with
``--connections`` keep-alive connections for ``--duration`` seconds; vci is measured without and with
batching. Prints requests/s, p50 and p99 and the ratios vci/MLServer. Never asserts.

``--batching-target`` measures issue #17's target instead (use ``--connections 64 --max-batch-size 32``):
MLServer with its own adaptive batching at the same size and wait, vci's V2 infer and /predict batched,
and the in-process floor (an unbatched predict + JSON) and the p99 bound (max_latency_ms + 3 batch
predicts) measured in the same run.

MLServer is a benchmark-only install, kept out of vci's own environment (it pins its own fastapi,
pydantic and protobuf): ``python3 -m venv /tmp/mlserver && /tmp/mlserver/bin/pip install mlserver==1.7.1
mlserver-sklearn==1.7.1 scikit-learn==<the version here>``, then

    python benchmarks/v2.py --mlserver /tmp/mlserver/bin/mlserver [--duration 10] [--connections 8]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
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
_spec.loader.exec_module(serve_benchmark)  # its free port and wrk output parser

REQUEST = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}


def infer_once(port: int, timeout: float = 1.0) -> bool:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v2/models/iris/infer",
        json.dumps(REQUEST).encode(),
        {"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status == 200 and bool(json.loads(resp.read())["outputs"])
    except OSError:
        return False


def wait_serving(proc: subprocess.Popen, port: int, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not infer_once(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not come up (exit {proc.poll()})")
        time.sleep(0.05)


@contextlib.contextmanager
def serving(cmd: list[str], env: dict, port: int, what: str):
    """A server process started from ``cmd``, once it answers an infer on ``port``; stopped afterwards."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_serving(proc, port, what)
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)


def wrk(port: int, connections: int, seconds: float, path: str = "/v2/models/iris/infer", body=REQUEST) -> dict:
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(body))}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    out = subprocess.run(
        ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
        + ["-s", str(script), f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return serve_benchmark.parse_wrk(out)


def run_vci(model_dir: Path, args, batch_size: int, path: str = "/v2/models/iris/infer", body=REQUEST) -> dict:
    port = serve_benchmark.free_port()
    cmd = [sys.executable, "-m", "vci.serve", "--model-dir", str(model_dir), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--work-dir", tempfile.mkdtemp(), "--max-batch-size", str(batch_size)]
    cmd += ["--max-latency-ms", str(args.max_latency_ms)]
    with serving(cmd, {**os.environ, "PYTHONPATH": str(REPO)}, port, "vci's server"):
        return wrk(port, args.connections, args.duration, path, body)


def run_mlserver(model_file: Path, args, batch_size: int = 0) -> dict:
    root = Path(tempfile.mkdtemp()) / "models"
    (root / "iris").mkdir(parents=True)
    shutil.copy(model_file, root / "iris" / "model.joblib")
    settings = {
        "name": "iris",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
    }
    if batch_size:  # MLServer's own adaptive batching, the same size and wait as vci's
        settings.update(max_batch_size=batch_size, max_batch_time=args.max_latency_ms / 1000)
    (root / "iris" / "model-settings.json").write_text(json.dumps(settings))
    port = serve_benchmark.free_port()
    env = {
        **os.environ,
        "MLSERVER_HTTP_PORT": str(port),
        "MLSERVER_GRPC_PORT": str(serve_benchmark.free_port()),
        "MLSERVER_METRICS_PORT": str(serve_benchmark.free_port()),
        "MLSERVER_PARALLEL_WORKERS": "0",
        "MLSERVER_HOST": "127.0.0.1",
    }
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen(
        [args.mlserver, "start", str(root)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_serving(proc, port, "MLServer")
        return wrk(port, args.connections, args.duration)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlserver", default=shutil.which("mlserver") or "mlserver", help="the mlserver command")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--max-latency-ms", type=float, default=5.0)
    parser.add_argument(
        "--batching-target", action="store_true", help="issue #17's comparison: both servers batching (use -c 64)"
    )
    args = parser.parse_args()
    from serve.v2fixtures import iris_model_dir

    os.environ.setdefault("VCI_CACHE_DIR", tempfile.mkdtemp())
    tmp = Path(tempfile.mkdtemp())
    model_dir, _ = iris_model_dir(tmp)
    if args.batching_target:
        return batching_target(model_dir, args)
    results = {
        "MLServer 1.7 (sklearn, in-process)": run_mlserver(_joblib_blob(model_dir), args),
        "vci": run_vci(model_dir, args, 0),
        f"vci, batching (max {args.max_batch_size})": run_vci(model_dir, args, args.max_batch_size),
    }
    print(f"V2 infer, one iris row; wrk, {args.connections} connections, {args.duration:g} s each")
    print_ratios(results, "MLServer 1.7 (sklearn, in-process)")


def print_ratios(results: dict, baseline: str) -> None:
    base = results[baseline]["rps"]
    for name, r in results.items():
        print(
            f"  {name:44} {r['rps']:9.0f} req/s  p50 {r['p50']:6.2f} ms  p99 {r['p99']:6.2f} ms  "
            f"errors {r['errors']}  ratio {r['rps'] / base:4.2f}x"
        )


def batching_target(model_dir: Path, args) -> None:
    """Both servers batching at the same size and wait; vci's /predict against the in-process floor of an
    unbatched predict + JSON, and its p99 against max_latency_ms + 3 batch-predict times."""
    floor_rps, batch_ms = in_process_costs(model_dir, args.max_batch_size)
    size = args.max_batch_size
    results = {
        f"MLServer 1.7, adaptive batching (max {size})": run_mlserver(_joblib_blob(model_dir), args, size),
        f"vci V2 infer, batching (max {size})": run_vci(model_dir, args, size),
        f"vci /predict, batching (max {size})": run_vci(model_dir, args, size, "/predict", IRIS_ROW),
    }
    floor = {"rps": floor_rps, "p50": 0.0, "p99": 0.0, "errors": 0}
    print(f"one iris row per request; wrk, {args.connections} connections, {args.duration:g} s each; one worker")
    print_ratios(
        {"in-process floor: predict + JSON, unbatched": floor, **results},
        f"MLServer 1.7, adaptive batching (max {size})",
    )
    served = results[f"vci /predict, batching (max {size})"]
    bound = args.max_latency_ms + 3 * batch_ms
    print(f"  vci /predict batched / in-process floor: {served['rps'] / floor_rps:.2f}x (target > 1)")
    print(
        f"  vci /predict p99 {served['p99']:.2f} ms; bound max_latency_ms + 3 x batch_predict({size}) = {bound:.2f} ms"
    )


IRIS_ROW = [[5.1, 3.5, 1.4, 0.2]]


def in_process_costs(model_dir: Path, batch_size: int, seconds: float = 2.0) -> tuple[float, float]:
    """Calls per second of an unbatched decode + predict + encode in this process, and the milliseconds of
    one batch_predict of ``batch_size`` rows."""
    from vci.modeldir import load_model

    model, _, _ = load_model(model_dir, tempfile.mkdtemp())
    body = json.dumps(IRIS_ROW)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            json.dumps(model.predict(json.loads(body))).encode()
        calls += 100
    rps = calls / (time.perf_counter() - start)
    items = [IRIS_ROW] * batch_size
    start = time.perf_counter()
    for _ in range(200):
        model.batch_predict(items)
    return rps, (time.perf_counter() - start) / 200 * 1000


def _joblib_blob(model_dir: Path) -> Path:
    """The blob holding the run's model.joblib artifact (the file MLServer is given too)."""
    from vci.modeldir import blob_path

    manifest = json.loads((model_dir / "manifest.json").read_text())
    return blob_path(model_dir, manifest["artifacts"]["model"]["digest"])


if __name__ == "__main__":
    main()
