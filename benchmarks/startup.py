"""CLI start-up: `vci --help` against `python -c pass`, both measured here, now (medians of N runs).

Target: vci adds at most 35 ms to bare Python's start-up (commands are imported only when they run).
"""

import statistics
import subprocess
import sys
import time

RUNS = 15


def median_seconds(argv: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    bare = median_seconds([sys.executable, "-c", "pass"])
    vci = median_seconds([sys.executable, "-m", "vci", "--help"])
    print(f"python -c pass: {bare * 1000:.0f} ms (median of {RUNS})")
    print(f"vci --help:     {vci * 1000:.0f} ms (median of {RUNS})")
    print(f"vci adds {(vci - bare) * 1000:.0f} ms (target <= 35 ms); ratio {vci / bare:.2f}x bare python")


if __name__ == "__main__":
    main()
