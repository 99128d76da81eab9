"""Benchmark of registry transfers against a real local registry: parallel push, re-push, promotion copies.

Starts ``docker-registry`` (two instances) on 127.0.0.1 and measures in one run, medians of --repeat:
  push x1       push of an image with --layers incompressible layers of --mb MB each, one at a time
                (the baseline);
  push x4       the same with 4 parallel uploads (a fresh repository each run);
  re-push       pushing the unchanged image again (HEADs and the manifest only);
  mount copy    promotion inside one registry (cross-repository mounts);
  stream copy   the same copy into a second registry (every byte streamed through vci).
Prints times and ratios against ``push x1``; never asserts.

    python benchmarks/oci_registry.py [--layers 8] [--mb 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from registry import RegistryServer  # noqa: E402
from vci.oci.image import append_layers, scratch_image  # noqa: E402
from vci.oci.layers import Entry, write_layer  # noqa: E402
from vci.oci.registry import RegistryClient  # noqa: E402
from vci.oci.transfer import copy_image, push_image  # noqa: E402

EPOCH = 1_700_000_000


def build_image(work: Path, layers: int, mb: int):
    rng = random.Random(0)
    built = [
        write_layer([Entry.bytes(f"/data/{i}", rng.randbytes(mb << 20))], work / f"layer{i}", epoch=EPOCH, level=1)
        for i in range(layers)
    ]
    return append_layers(scratch_image(), built, epoch=EPOCH)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--mb", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        image = build_image(work, args.layers, args.mb)
        total = sum(layer.size for layer in image.layers) / 1e6
        print(f"image: {args.layers} layers, {total:.1f} MB compressed")
        with RegistryServer(work / "a") as one, RegistryServer(work / "b") as two:
            client, other = RegistryClient(one.host), RegistryClient(two.host)
            runs = {"push x1": [], "push x4": [], "re-push": [], "mount copy": [], "stream copy": []}
            for i in range(args.repeat):
                runs["push x1"].append(
                    timed(lambda i=i: push_image(client, image, f"serial/r{i}", tag="v1", parallel=1))
                )
                runs["push x4"].append(timed(lambda i=i: push_image(client, image, f"par/r{i}", tag="v1", parallel=4)))
                runs["re-push"].append(timed(lambda i=i: push_image(client, image, f"par/r{i}", tag="v1")))
                src = f"{one.host}/par/r{i}@{image.digest}"
                runs["mount copy"].append(timed(lambda i=i, src=src: copy_image(client, src, f"prod/r{i}", tag="live")))
                runs["stream copy"].append(timed(lambda i=i, src=src: copy_image(other, src, f"prod/r{i}", tag="live")))
        base = statistics.median(runs["push x1"])
        for name, times in runs.items():
            median = statistics.median(times)
            rate = total / median
            print(f"{name:12s} {median:7.3f} s  x{median / base:.3f} of push x1  ({rate:.0f} MB/s equiv.)")


if __name__ == "__main__":
    main()
