"""Packaging: rebuild time when a 200 MB artifact changes, and bytes pushed for that weights-only rebuild.

Measured in the same run:
  floor  = read the 200 MB file once, sha256 it, gzip it (same level) and sha256 the gzip stream
  build  = build_image() of a run whose only change is that artifact, base/deps/runtime/model cached
  pushed = bytes uploaded for that rebuild against the changed layer's size
Targets: build <= 1.3x floor; pushed <= 1.01x the changed layer.
Needs `docker-registry` (Debian) for the push part; runs on 127.0.0.1 only.
"""

import gzip
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
SIZE = int(os.environ.get("BENCH_MB", "200")) << 20


class Scaler:
    def __init__(self, artifacts):
        self.path = artifacts["weights"]

    def predict(self, data):
        return data


def write_random(path: Path) -> None:
    with open(path, "wb") as f:
        for _ in range(SIZE >> 20):
            f.write(os.urandom(1 << 20))


def floor_seconds(path: Path, level: int) -> float:
    start = time.perf_counter()
    raw, packed = hashlib.sha256(), hashlib.sha256()

    class Sink:
        def write(self, data):
            packed.update(data)
            return len(data)

    with open(path, "rb") as f, gzip.GzipFile(fileobj=Sink(), mode="wb", compresslevel=level, mtime=0) as gz:
        while chunk := f.read(1 << 20):
            raw.update(chunk)
            gz.write(chunk)
    return time.perf_counter() - start


def main() -> None:
    import vci
    from registry import RegistryServer
    from vci.build import Options
    from vci.build.image import build_image
    from vci.build.outputs import push_to
    from vci.config import load_settings
    from vci.oci.image import ContainerConfig, append_layers, scratch_image
    from vci.oci.layout import write_layout

    with tempfile.TemporaryDirectory(prefix="vci-bench-") as tmp:
        tmp = Path(tmp)
        os.environ["VCI_CACHE_DIR"] = str(tmp / "cache")
        settings = load_settings({"store": str(tmp / "store"), "project": "bench"}, cwd=tmp, environ={})
        py = ".".join(sys.version.split()[0].split(".")[:2])
        write_layout(
            tmp / "base",
            append_layers(scratch_image(), [], epoch=0, config=ContainerConfig(labels={"vci.python": py})),
            "base",
        )
        options = Options(base=f"oci:{tmp / 'base'}:base")

        def log_run(seed: int):
            weights = tmp / f"weights-{seed}.bin"
            write_random(weights)
            run = vci.init("bench", settings=settings)
            run.log_artifact("weights", weights)
            run.log_model(Scaler, artifacts=["weights"])
            run.commit()
            return run, weights  # the timed build includes fetching the run from the store (verified)

        with RegistryServer(tmp / "registry") as reg:
            repo = f"{reg.host}/bench/model"
            first, _ = log_run(1)
            image, _ = build_image(first, options, tmp / "cache" / "oci")
            push_to(image, repo, "v1", None)
            second, weights = log_run(2)
            floor = min(floor_seconds(weights, options.level) for _ in range(2))
            start = time.perf_counter()
            image2, layers = build_image(second, options, tmp / "cache" / "oci")
            build = time.perf_counter() - start
            pushed = push_to(image2, repo, "v2", None)
        changed = next(layer for layer in layers if layer["name"] == "artifact weights")
        print(f"artifact: {SIZE >> 20} MiB; floor (read+sha256+gzip+sha256 once): {floor:.2f} s")
        print(f"rebuild with only the artifact changed: {build:.2f} s  -> {build / floor:.2f}x floor (target <= 1.3x)")
        print(
            f"bytes pushed: {pushed['bytes_moved']} for a changed layer of {changed['size']} "
            f"-> {pushed['bytes_moved'] / changed['size']:.4f}x (target <= 1.01x); uploaded blobs: "
            f"{len(pushed['uploaded'])}: " + ", ".join(_names(pushed["uploaded"], layers, image2))
        )


def _names(digests, layers, image) -> list:
    by_digest = {layer["digest"]: layer["name"] for layer in layers}
    by_digest[image.config_descriptor.digest] = "config"
    return [by_digest.get(d, d[:19]) for d in digests]


if __name__ == "__main__":
    main()
