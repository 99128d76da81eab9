"""Cold start of the iris image under runc: container start to first correct prediction, against a floor.

Measured in the same run, on the same Debian+python3 base (tests/images.py: debootstrap, cached), each
container started with runc as the tests start images (host network, read-only root, tmpfs /tmp):
  floor    = the vci image's rootfs running a bare script: import the framework, joblib.load the
             artifact's blob, predict once, print (start to the printed answer, checked)
  vci      = the vci image as packaged: `python3 -m vci.serve` to the first POST /predict answering
             ["setosa"] (verification of every blob, unpickling, model_test and the server's start included)
  no-pyc   = the same run packaged without bytecode in its layers (as before it was compiled ahead)
Medians of BENCH_RUNS (default 5) starts each, after one unmeasured start per image (unpacking, page
cache): this is the start of a new container on a node that has the image, not a pull. Prints the
ratios against the floor and each image's compressed size by layer. Target: vci <= 1.25x floor.
Needs runc, umoci and skopeo (scripts/test.sh installs them); run as root.
"""

import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "examples" / "iris"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
ROW, ANSWER = [[5.1, 3.5, 1.4, 0.2]], ["setosa"]
FLOOR = (
    "import json, joblib\n"
    "clf = joblib.load({blob!r})\n"
    "print('FLOOR', json.dumps([['setosa', 'versicolor', 'virginica'][i] for i in clf.predict({row!r})]))\n"
)


def without_bytecode():
    """Package as vci did before bytecode was compiled ahead (the benchmark's 'before')."""
    from vci.build import bytecode, plan, wheels

    for module in (bytecode, plan, wheels):
        module.bytecode_tag = lambda python: None
    bytecode.compile_tree = lambda directory, image_root, python: 0
    plan.compile_tree = wheels.compile_tree = bytecode.compile_tree


def exited(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


def answers(url: str) -> bool:
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url + "/predict", data=json.dumps(ROW).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=2) as resp:
            return json.loads(resp.read()) == ANSWER
    except (OSError, ValueError, urllib.error.HTTPError):
        return False


def time_server(image: str) -> float:
    from images import run_image

    start = time.perf_counter()
    with run_image(image) as box:
        while not answers(box.url):
            if exited(box.pid):
                raise SystemExit(f"the server exited: {box.logs()[-2000:]}")
            if time.perf_counter() - start > 120:
                raise SystemExit(f"no answer within 120 s: {box.logs()[-2000:]}")
            time.sleep(0.005)
        return time.perf_counter() - start


def time_floor(image: str, blob: str) -> float:
    from images import run_image

    start, answer = time.perf_counter(), f"FLOOR {json.dumps(ANSWER)}"
    with run_image(image, args=["python3", "-c", FLOOR.format(blob=blob, row=ROW)]) as box:
        while answer not in box.logs():  # its first prediction (PYTHONUNBUFFERED), not its exit
            if exited(box.pid) and answer not in box.logs():
                raise SystemExit(f"the floor script did not predict: {box.logs()[-2000:]}")
            if time.perf_counter() - start > 120:
                raise SystemExit(f"the floor script ran over 120 s: {box.logs()[-2000:]}")
            time.sleep(0.005)
        return time.perf_counter() - start


def package_iris(tmp: Path, base: str, tag: str) -> tuple[str, dict, str]:
    """Log the iris model (once) and package it as an OCI layout; (image, result, weights blob path)."""
    from train import train

    import vci
    from vci.build import Options
    from vci.build.package import package
    from vci.config import load_settings

    settings = load_settings({"store": str(tmp / "store"), "project": "iris"}, cwd=tmp, environ={})
    if not (tmp / "run-id").exists():
        from model import Model

        run = vci.init("iris", settings=settings)
        run.log_artifact("weights", train(str(tmp / "out")))
        run.log_model(Model, artifacts=["weights"])
        run.log_requirements(["scikit-learn"])
        run.commit()
        (tmp / "run-id").write_text(run.id)
    run_id = (tmp / "run-id").read_text()
    result = package(settings, run_id, Options(base=base, layout=str(tmp / tag)))
    weights = vci.get_run(run_id, settings=settings).manifest["artifacts"]["weights"]["digest"]
    return f"oci:{tmp / tag}:{run_id}", result, f"/opt/vci/model/blobs/sha256/{weights.split(':')[1]}"


def sizes(result: dict) -> str:
    return ", ".join(f"{layer['name']} {layer['size'] / 1e6:.1f} MB" for layer in result["layers"])


@contextlib.contextmanager
def workdir():
    """``(a temporary directory, the cached Debian+python3 base as oci:DIR:base)``, VCI_CACHE_DIR in it."""
    from images import base_image_layout

    base = f"oci:{base_image_layout()}:base"
    with tempfile.TemporaryDirectory(prefix="vci-coldstart-") as tmp:
        os.environ["VCI_CACHE_DIR"] = str(Path(tmp) / "cache")
        yield Path(tmp), base


def main() -> None:
    with workdir() as (tmp, base):
        image, result, blob = package_iris(tmp, base, "with-pyc")
        without_bytecode()
        before, before_result, _ = package_iris(tmp, base, "no-pyc")
        for warm in (lambda: time_floor(image, blob), lambda: time_server(image), lambda: time_server(before)):
            warm()  # unpack and read once: the measured starts find the image on the node
        times: dict[str, list[float]] = {"floor": [], "vci": [], "no-pyc": []}
        for _ in range(RUNS):
            times["floor"].append(time_floor(image, blob))
            times["vci"].append(time_server(image))
            times["no-pyc"].append(time_server(before))
    median = {k: statistics.median(v) for k, v in times.items()}
    for name in ("floor", "vci", "no-pyc"):
        runs = " ".join(f"{t:.2f}" for t in times[name])
        ratio = median[name] / median["floor"]
        print(f"{name:<7} median {median[name]:.2f} s  {ratio:.2f}x floor   (runs: {runs})")
    print(f"target: vci <= 1.25x floor: {'met' if median['vci'] <= 1.25 * median['floor'] else 'NOT met'}")
    print(f"layers (gzip) with bytecode: {sizes(result)}")
    print(f"layers (gzip) without:       {sizes(before_result)}")


if __name__ == "__main__":
    main()
