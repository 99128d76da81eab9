"""Shadow traffic's cost to live traffic: /predict of the stable server with no shadow, with a shadow that
answers, one that hangs and one that is down, in one run.

The iris model of benchmarks/serve.py on one server (started with ``VCI_SHADOW_CONFIG``, as a local
deployment's is), wrk at ``--connections`` keep-alive connections for ``--duration`` seconds per case, in
``--rounds`` rounds (medians). Cases, by what the mirror config names (fraction 1.0, every live request
copied):
  none     no config: the mirror is idle
  healthy  a second vci server with the same model (it answers, and agrees)
  hanging  a socket that accepts and never answers (each copy waits for the sender's 10 s timeout)
  down     a port where nothing listens (each copy fails at once)
Prints requests/s, p50 and p99, live errors, and each case's p50/p99 against ``none``; the issue's target
is live latency within 1.1x of no shadow and no live error. Never asserts.

    python benchmarks/shadow.py [--duration 5] [--connections 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
_spec = importlib.util.spec_from_file_location("serve_benchmark", REPO / "benchmarks" / "serve.py")
assert _spec and _spec.loader
serve_benchmark = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serve_benchmark)  # the iris model, its server and wrk


def hanging_listener() -> tuple[socket.socket, int]:
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock, sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vci-shadow-bench-"))
    model_dir = serve_benchmark.build_model_dir(root)
    config = root / "shadow.json"
    live, port = serve_benchmark.spawn_vci(model_dir, env={"VCI_SHADOW_CONFIG": str(config)})
    healthy, healthy_port = serve_benchmark.spawn_vci(model_dir)
    hang, hang_port = hanging_listener()
    targets = {
        "none": None,
        "healthy": f"http://127.0.0.1:{healthy_port}",
        "hanging": f"http://127.0.0.1:{hang_port}",
        "down": f"http://127.0.0.1:{serve_benchmark.free_port()}",
    }
    results: dict[str, list[dict]] = {name: [] for name in targets}
    try:
        for round_number in range(args.rounds):
            for name, url in targets.items():
                release = f"bench-{round_number}-{name}"
                if url is None:
                    config.unlink(missing_ok=True)
                else:
                    config.write_text(
                        json.dumps({"url": url, "fraction": 1.0, "compare": "exact", "release_id": release})
                    )
                time.sleep(0.5)  # the server rereads the config every 0.2 s
                results[name].append(serve_benchmark.load_wrk(port, args.connections, args.duration))
    finally:
        for proc in (live, healthy):
            proc.terminate()
        hang.close()
    report(results, args)


def report(results: dict[str, list[dict]], args) -> None:
    print(
        f"live /predict, one iris row; wrk, {args.connections} connections, {args.duration:g} s, {args.rounds} rounds"
    )
    base = {key: statistics.median(r[key] for r in results["none"]) for key in ("rps", "p50", "p99")}
    for name, runs in results.items():
        rps, p50, p99 = (statistics.median(r[key] for r in runs) for key in ("rps", "p50", "p99"))
        errors = sum(r["errors"] for r in runs)
        print(
            f"  shadow {name:<8} {rps:7.0f} req/s  p50 {p50:6.2f} ms ({p50 / base['p50']:.2f}x)  "
            f"p99 {p99:6.2f} ms ({p99 / base['p99']:.2f}x)  live errors {errors}"
        )


if __name__ == "__main__":
    main()
