"""Benchmark of payload logging: /predict with the S3 sink on (moto) at sample 1.0 against logging off, same run.

The iris model of benchmarks/serve.py, one worker, wrk at ``--connections`` (8) keep-alive connections for
``--duration`` seconds per measurement, in rounds of three: logging off; the S3 sink on, writing to a
moto server in its own process (so its CPU is charged to the machine, as a real endpoint's would not be);
and the S3 sink down (an endpoint on a port where nothing listens). Prints requests/s, p50 and p99 of each
(the median over ``--rounds``), the ratio against off, and what the server's metrics counted as written
and dropped, and the server's CPU time per request (user + system, from /proc: the figure a busy shared
machine disturbs least). Never asserts.

    python benchmarks/payloads.py [--duration 5] [--connections 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
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

from tests.s3server import dummy_aws_env, start_moto_process, stop_process  # noqa: E402

BUCKET = "payloads"


PAYLOAD_COUNTERS = {"written": "vci_payload_records_written_total", "dropped": "vci_payload_records_dropped_total"}


def measure(
    model_dir: Path, args, sink_env: dict[str, str], headers: dict[str, str] | None = None, counters=PAYLOAD_COUNTERS
) -> dict:
    """wrk against one server process with ``sink_env`` (each request with ``headers``); its numbers and
    the ``counters`` of /metrics (result key -> metric name)."""
    port = serve_benchmark.free_port()
    cmd = [sys.executable, "-m", "vci.serve", "--model-dir", str(model_dir), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--work-dir", tempfile.mkdtemp()]
    env = {**os.environ, "PYTHONPATH": str(REPO), **sink_env}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not serve_benchmark.post_predict(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not come up (exit {proc.poll()})")
            time.sleep(0.01)
        cpu = _cpu_seconds(proc.pid)
        result = serve_benchmark.load_wrk(port, args.connections, args.duration, headers)
        time.sleep(0.2)  # the writer's last poll
        result["cpu_us"] = (_cpu_seconds(proc.pid) - cpu) * 1e6 / max(result["rps"] * args.duration, 1)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        result.update({key: _counter(metrics, name) for key, name in counters.items()})
        return result
    finally:
        proc.terminate()
        proc.wait(30)


def _cpu_seconds(pid: int) -> float:
    """The server process's user + system CPU time (less disturbed by a busy machine than requests/s)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _counter(metrics: str, name: str) -> int:
    return int(sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? ([\d.]+)$", metrics, re.M)))


def s3_env(endpoint: str, batch_records: int) -> dict[str, str]:
    return {
        **dummy_aws_env(),
        "VCI_S3_ENDPOINT_URL": endpoint,
        "VCI_PAYLOAD_SINK": f"s3://{BUCKET}/bench",
        "VCI_PAYLOAD_SAMPLE": "1.0",
        "VCI_PAYLOAD_BATCH_RECORDS": str(batch_records),
        "VCI_PAYLOAD_BATCH_SECONDS": "2",
        "VCI_ENVIRONMENT": "bench",
    }


def make_bucket(endpoint: str) -> None:
    import boto3

    aws = dummy_aws_env()
    boto3.session.Session(
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        region_name=aws["AWS_DEFAULT_REGION"],
    ).client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-records", type=int, default=500)
    args = parser.parse_args()
    model_dir = serve_benchmark.build_model_dir(Path(tempfile.mkdtemp(prefix="vci-bench-")) / "model")
    moto, endpoint = start_moto_process()
    try:
        make_bucket(endpoint)
        kinds = {
            "off": {},
            "s3 on (moto)": s3_env(endpoint, args.batch_records),
            "s3 down": s3_env(f"http://127.0.0.1:{serve_benchmark.free_port()}", args.batch_records),
        }
        runs: dict[str, list[dict]] = {name: [] for name in kinds}
        for _ in range(args.rounds):
            for name, env in kinds.items():
                runs[name].append(measure(model_dir, args, env))
    finally:
        stop_process(moto)
    report(runs, args)


def report(runs: dict[str, list[dict]], args) -> None:
    print_runs(runs, args, lambda results: (
        f"records written {sum(r['written'] for r in results)}  dropped {sum(r['dropped'] for r in results)}  "
        f"errors {sum(r['errors'] for r in results)}"
    ))  # fmt: skip


def print_runs(runs: dict[str, list[dict]], args, more) -> None:
    """Per kind of run: requests/s (and its ratio against the first kind), p50, p99 and the server's CPU per
    request (medians over the rounds), then what ``more(results)`` says."""
    print(f"iris /predict, wrk {args.connections} connections, {args.duration:g} s x {args.rounds} rounds (medians)")
    first = statistics.median(r["rps"] for r in next(iter(runs.values())))
    for name, results in runs.items():
        rps, p50, p99, cpu = (statistics.median(r[key] for r in results) for key in ("rps", "p50", "p99", "cpu_us"))
        print(
            f"  {name:16} {rps:8.0f} req/s ({rps / first:4.2f}x)  p50 {p50:5.2f} ms  p99 {p99:5.2f} ms  "
            f"server CPU {cpu:4.0f} us/req  {more(results)}"
        )


if __name__ == "__main__":
    main()
