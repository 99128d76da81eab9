"""Benchmark of layer building: gzip level 1/6/9 (time and size) and one-pass hashing against tar-then-gzip.

The payload is a dependencies-like tree (numpy + sklearn from this interpreter's site-packages, about
100 MB of .py, .so and data files; any directory via --tree). Measured in one run:
  level N     ``write_layer`` at gzip level N: wall time and compressed size, ratios against level 6;
  floor       zlib level 6 plus both sha256s on the tar bytes already in memory (no tar, no I/O);
  two-pass    the obvious alternative: write the tar, read it back to hash it (diff_id), gzip it,
              read the gzip back to hash it (digest): ratio of its time to the one-pass level 6.
Medians of --repeat runs; prints ratios, never asserts.

    python benchmarks/oci_layers.py [--tree DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vci.digests import sha256_file  # noqa: E402
from vci.oci.layers import Entry, tree_entries, write_layer  # noqa: E402

EPOCH = 1_700_000_000


def default_entries() -> list[Entry]:
    entries = []
    for name in ("numpy", "sklearn"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        entries += tree_entries(Path(module.__file__).parent, f"/opt/vci/deps/{name}")
    if not entries:
        entries = tree_entries(Path(gzip.__file__).parent / "email", "/opt/email")
    return entries


def one_pass(entries, work: Path, level: int) -> tuple[float, int]:
    start = time.perf_counter()
    layer = write_layer(entries, work / f"layer-{level}", epoch=EPOCH, level=level)
    return time.perf_counter() - start, layer.size


def two_pass(entries, work: Path) -> float:
    """Write the tar, read it to hash it, read it to gzip it, read the gzip to hash it."""
    import tarfile

    from vci.oci.layers import _add, _complete_and_sorted

    start = time.perf_counter()
    with tarfile.open(work / "plain.tar", "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in _complete_and_sorted(entries):
            _add(tar, entry, EPOCH)
    sha256_file(work / "plain.tar")
    with open(work / "plain.tar", "rb") as src, gzip.GzipFile(work / "two.tar.gz", "wb", 6, mtime=0) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    sha256_file(work / "two.tar.gz")
    return time.perf_counter() - start


def floor(work: Path) -> float:
    import hashlib
    import zlib

    data = gzip.decompress((work / "layer-1").read_bytes())
    start = time.perf_counter()
    compressed = zlib.compress(data, 6)
    hashlib.sha256(data).digest(), hashlib.sha256(compressed).digest()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    entries = tree_entries(args.tree, "/data") if args.tree else default_entries()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        raw = sum(e.source.stat().st_size for e in entries if e.kind == "file")
        print(f"payload: {len([e for e in entries if e.kind == 'file'])} files, {raw / 1e6:.1f} MB")
        results = {}
        for level in (1, 6, 9):
            runs = [one_pass(entries, work, level) for _ in range(args.repeat)]
            results[level] = (statistics.median(t for t, _ in runs), runs[0][1])
        base_time, base_size = results[6]
        for level, (seconds, size) in results.items():
            print(
                f"level {level}: {seconds:6.2f} s  {size / 1e6:7.1f} MB  "
                f"time x{seconds / base_time:.2f}  size x{size / base_size:.3f} (vs level 6)  "
                f"{raw / seconds / 1e6:.0f} MB/s in"
            )
        low = statistics.median(floor(work) for _ in range(args.repeat))
        print(f"floor (zlib + hashes in memory): {low:.2f} s; one-pass level 6 = x{base_time / low:.2f} it")
        two = statistics.median(two_pass(entries, work) for _ in range(args.repeat))
        print(f"two-pass tar, hash, gzip, hash: {two:.2f} s = x{two / base_time:.2f} the one-pass level 6")


if __name__ == "__main__":
    main()
