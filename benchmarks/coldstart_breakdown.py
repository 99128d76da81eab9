"""Where the iris image's cold start goes, phase by phase, and what verifying a 1 GiB artifact costs at start.

The set-up of coldstart.py (the same packaged image, runc as the tests run images, the host network, a
read-only root), after one unmeasured start. Medians of BENCH_RUNS (default 5) starts of each:
  container    runc starting a container to its first output (`/bin/sh -c 'echo UP'` in the same image)
  interpreter  python3 starting in it (site, PYTHONPATH) to its first line, less the container
  vci imports  the server's own modules (`import vci.serve.__main__, vci.serve.server`)
  verification every blob hashed against the run manifest (``modeldir.verify_model_dir``)
  unpickling   the model class (``modeldir.load_model_class``: cloudpickle and the class)
  model init   ``Model(artifacts)``: the framework's imports and ``joblib.load`` of the weights
  model_test   the model's self-test (one prediction)
  server       the real server's time to its first correct answer, less the phases above: the event
               loop, binding and listening, the load thread, the first HTTP request
The phases come from a probe that makes the server's load calls in its order, each stamped (time.time(),
the host's clock: runc shares it), in the image as packaged. The real server's start is timed as
coldstart.py times it. Then a run of the same model with a 1 GiB artifact beside its weights: the
verification phase's MB/s, how many bytes the load reads (``rchar`` of /proc/self/io: one read of each
blob is what "hash once" means), and the real server's extra time to its first answer.
Needs runc, umoci and skopeo (scripts/test.sh installs them); run as root.
"""

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from coldstart import RUNS, exited, package_iris, time_server

GiB = 1 << 30
PHASES = ("container", "interpreter", "vci imports", "verification", "unpickling", "model init", "model_test")
PROBE = r"""
import time
marks = [("start", time.time())]
import json, os
io = lambda: int(dict(l.split(": ") for l in open("/proc/self/io").read().splitlines())["rchar"])
import vci.serve.__main__, vci.serve.server
marks.append(("vci imports", time.time()))
from vci import modeldir
model_dir, read = os.environ["VCI_MODEL_DIR"], io()
manifest, digest = modeldir.verify_model_dir(model_dir)
marks.append(("verification", time.time()))
read = io() - read
cls = modeldir.load_model_class(model_dir, manifest)
marks.append(("unpickling", time.time()))
artifacts = modeldir.materialize_artifacts(model_dir, manifest, "/tmp/work")
model = cls({k: artifacts[k] for k in manifest["model"].get("artifacts", sorted(artifacts))})
marks.append(("model init", time.time()))
model.model_test()
marks.append(("model_test", time.time()))
print("PROBE " + json.dumps({"marks": marks, "verified_read": read}), flush=True)
"""


def wait_for(box, marker: str, started: float, what: str) -> str:
    """The first log line holding ``marker`` (a container's output), bounded by 120 s."""
    while True:
        line = next((x for x in box.logs().splitlines() if marker in x), None)
        if line:
            return line
        if exited(box.pid) and marker not in box.logs():
            raise SystemExit(f"{what} ended without {marker!r}: {box.logs()[-2000:]}")
        if time.perf_counter() - started > 120:
            raise SystemExit(f"{what} ran over 120 s: {box.logs()[-2000:]}")
        time.sleep(0.002)


def time_container(image: str) -> float:
    """runc's own start: a shell in the same image to its first output."""
    from images import run_image

    start = time.perf_counter()
    with run_image(image, args=["/bin/sh", "-c", "echo UP"]) as box:
        wait_for(box, "UP", start, "the shell")
        return time.perf_counter() - start


def probe(image: str) -> tuple[dict[str, float], int]:
    """Seconds of each phase from the container's launch (the probe's stamps), and the bytes verification read."""
    from images import run_image

    launched, start = time.time(), time.perf_counter()
    with run_image(image, args=["python3", "-c", PROBE]) as box:
        found = json.loads(wait_for(box, "PROBE ", start, "the probe").split("PROBE ", 1)[1])
    stamps = dict(found["marks"])
    previous, phases = launched, {}
    for name in ("start", *PHASES[2:]):
        phases[name] = stamps[name] - previous
        previous = stamps[name]
    return phases, found["verified_read"]


def measure(image: str) -> dict[str, list[float]]:
    """BENCH_RUNS starts of each kind, after an unmeasured one; per phase, the list of seconds."""
    time_container(image), probe(image), time_server(image)  # unpack and read once
    runs: dict[str, list[float]] = {name: [] for name in (*PHASES, "server", "total", "read")}
    for _ in range(RUNS):
        container = time_container(image)
        phases, read = probe(image)
        total = time_server(image)
        runs["container"].append(container)
        runs["interpreter"].append(phases.pop("start") - container)
        for name, seconds in phases.items():
            runs[name].append(seconds)
        runs["server"].append(total - container - sum(runs[n][-1] for n in PHASES[1:]))
        runs["total"].append(total)
        runs["read"].append(read)
    return runs


def print_breakdown(title: str, runs: dict[str, list[float]]) -> dict[str, float]:
    median = {name: statistics.median(values) for name, values in runs.items()}
    print(f"{title}: first correct answer after {median['total']:.2f} s (median of {RUNS})")
    for name in (*PHASES, "server"):
        share, each = 100 * median[name] / median["total"], " ".join(f"{t * 1000:.0f}" for t in runs[name])
        print(f"  {name:<13} {median[name] * 1000:7.0f} ms  {share:4.0f} %   (runs, ms: {each})")
    return median


def package_with_ballast(tmp: Path, base: str) -> str:
    """The iris run again with a 1 GiB artifact (zeros: cheap to gzip; hashing costs the same for any bytes)."""
    import vci
    from vci.build import Options
    from vci.build.package import package
    from vci.config import load_settings

    settings = load_settings({"store": str(tmp / "store"), "project": "iris"}, cwd=tmp, environ={})
    ballast = tmp / "ballast.bin"
    with open(ballast, "wb") as f:
        for _ in range(GiB // (1 << 24)):
            f.write(bytes(1 << 24))
    from model import Model

    run = vci.init("iris", settings=settings)
    run.log_artifact("weights", tmp / "out" / "model.joblib")  # what package_iris trained
    run.log_artifact("ballast", ballast)
    run.log_model(Model, artifacts=["weights"])
    run.log_requirements(["scikit-learn"])
    run.commit()
    ballast.unlink()
    package(settings, run.id, Options(base=base, layout=str(tmp / "ballast"), level=1))
    return f"oci:{tmp / 'ballast'}:{run.id}"


def main() -> None:
    from images import base_image_layout

    base = f"oci:{base_image_layout()}:base"
    with tempfile.TemporaryDirectory(prefix="vci-coldstart-") as tmp:
        tmp = Path(tmp)
        os.environ["VCI_CACHE_DIR"] = str(tmp / "cache")
        image, _, _ = package_iris(tmp, base, "with-pyc")
        small = print_breakdown("iris", measure(image))
        big = print_breakdown("iris + a 1 GiB artifact", measure(package_with_ballast(tmp, base)))
    verified = big["verification"] - small["verification"]
    print(
        f"1 GiB artifact: verification {big['verification']:.2f} s ({GiB / 1e6 / big['verification']:.0f} MB/s), "
        f"read {big['read'] / GiB:.2f} GiB to verify it (once is 1.00), "
        f"first answer {big['total'] - small['total']:+.2f} s later ({verified:+.2f} s of it verification)"
    )


if __name__ == "__main__":
    main()
