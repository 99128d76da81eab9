"""Where the iris image's cold start goes, phase by phase, and what verifying a 1 GiB artifact costs at start.

The set-up of coldstart.py (the same packaged image, runc as the tests run images, the host network, a
read-only root), after one unmeasured start. Medians of BENCH_RUNS (default 5) starts of each:
  container    the launch to a shell's first command in the same image (`date` in `/bin/sh -c`)
  interpreter  python3 starting in it (site, PYTHONPATH) to its first line, less the container
  vci imports  the server's own modules (`import vci.serve.__main__, vci.serve.server`)
  verification every blob hashed against the run manifest (``modeldir.verify_model_dir``)
  unpickling   the model class (``modeldir.load_model_class``: cloudpickle and the class)
  model init   ``Model(artifacts)``: the framework's imports and ``joblib.load`` of the weights
  model_test   the model's self-test (one prediction)
  server's own the real server's launch to listening less the first three phases (binding, the event
               loop), plus its ready (the model_test log record) to its first correct answer
The phases come from a probe that makes the server's load calls one after the other, as the server
does, each stamped (time.time(): runc shares the host's clock), in the image as packaged. The real
server is timed as coldstart.py times it, its log's time stamps splitting it. Then the same model
written as most model files are (ImportingModel: scikit-learn imported at the top, so unpickling the
class imports it) with a 1 GiB artifact beside its weights: the verification phase's MB/s, how many
bytes it reads (``rchar`` of /proc/self/io: one read of each blob is what "hash once" means), and the
real server's load against the phases' sum (what overlapping the hashing with the class's imports
could save at most).
Needs runc, umoci and skopeo (scripts/test.sh installs them); run as root.
"""

import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

import joblib
import sklearn.linear_model
from coldstart import RUNS, answers, exited, package_iris, time_floor, workdir

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
AFTER_FRAMEWORK = (  # what the server's imports add once the framework's are in (the stdlib modules both import)
    "import time, joblib, sklearn.linear_model; t = time.perf_counter(); import vci.serve.__main__, vci.serve.server; "
    "print('MARGINAL', time.perf_counter() - t, flush=True)"
)


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
    """runc's own start: launch to the first command of a shell in the same image (its own time stamp)."""
    from images import run_image

    launched, start = time.time(), time.perf_counter()
    with run_image(image, args=["/bin/sh", "-c", "echo UP $(date +%s.%N)"]) as box:
        return float(wait_for(box, "UP ", start, "the shell").split()[-1]) - launched


def probe(image: str) -> tuple[dict[str, float], int]:
    """Seconds of each phase (from the probe's stamps; the first from the launch), and the bytes verified."""
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


def time_server(image: str) -> dict[str, float]:
    """The real server (as coldstart.py starts it): launch to listening, to ready, to its first correct answer."""
    from images import run_image

    launched, start = time.time(), time.perf_counter()
    with run_image(image) as box:
        while not answers(box.url):
            if exited(box.pid) or time.perf_counter() - start > 120:
                raise SystemExit(f"no answer: {box.logs()[-2000:]}")
            time.sleep(0.005)
        answered = time.time()
        wait_for(box, '"model_test"', start, "the server")  # logged just after the state turns ready
        events = {}
        for line in box.logs().splitlines():
            if line.startswith("{") and line.endswith("}"):
                record = json.loads(line)
                events.setdefault(record.get("event"), record.get("ts"))
    return {
        "listening": events["listening"] - launched,
        "load": events["model_test"] - events["listening"],
        "answer": answered - events["model_test"],
        "total": answered - launched,
    }


def marginal_imports(image: str) -> float:
    """Seconds the server's imports take after the framework's (iris: joblib, sklearn.linear_model)."""
    from images import run_image

    with run_image(image, args=["python3", "-c", AFTER_FRAMEWORK]) as box:
        return float(wait_for(box, "MARGINAL ", time.perf_counter(), "the import probe").split()[-1])


def measure(images: list[tuple[str, str]]) -> list[dict[str, list[float]]]:
    """BENCH_RUNS rounds, each starting every kind of container for each ``(image, weights blob)`` in turn
    (so that the load of a shared machine falls on all alike), after an unmeasured round."""
    for image, blob in images:  # unpack and read once
        time_container(image), probe(image), time_server(image), time_floor(image, blob)
    runs: list[dict[str, list[float]]] = [defaultdict(list) for _ in images]
    for _ in range(RUNS):
        for (image, blob), each in zip(images, runs, strict=True):
            measure_once(image, blob, each)
    return runs


def measure_once(image: str, blob: str, runs: dict[str, list[float]]) -> None:
    runs["floor"].append(time_floor(image, blob))
    runs["vci imports after the framework's"].append(marginal_imports(image))
    container = time_container(image)
    phases, read = probe(image)
    runs["container"].append(container)
    runs["interpreter"].append(phases.pop("start") - container)
    for name, seconds in phases.items():
        runs[name].append(seconds)
    for name, seconds in time_server(image).items():
        runs[f"server {name}"].append(seconds)
    runs["read"].append(read)


def print_breakdown(title: str, runs: dict[str, list[float]]) -> dict[str, float]:
    """The phases (the probe's), then the real server's timeline; medians, in ms."""
    median = {name: statistics.median(values) for name, values in runs.items()}
    total = median["server total"]
    median["server's own"] = median["server listening"] - sum(median[n] for n in PHASES[:3]) + median["server answer"]
    floor, extra = median["floor"], (total - median["floor"]) * 1000
    print(
        f"{title}: the server's first correct answer after {total:.2f} s (median of {RUNS}); "
        f"the floor {floor:.2f} s ({total / floor:.2f}x, vci's extra {extra:.0f} ms)"
    )
    for name in (*PHASES, "server's own"):
        each = " ".join(f"{t * 1000:.0f}" for t in runs.get(name, []))
        print(f"  {name:<13} {median[name] * 1000:6.0f} ms {100 * median[name] / total:4.0f} %   {each}")
    print(
        f"  the server: listening after {median['server listening'] * 1000:.0f} ms, loaded and self-tested "
        f"{median['server load'] * 1000:.0f} ms later, answering {median['server answer'] * 1000:.0f} ms after that"
        " (the server's own: binding, the event loop and the first request, less the probe's first three phases)"
    )
    after = median["vci imports after the framework's"]
    print(f"  vci imports after the framework's: {after * 1000:.0f} ms (the stdlib modules the server imports, the")
    print("    framework imports too: where the framework comes first, vci's imports cost this much)")
    return median


class ImportingModel:
    """The iris model as most model files are written: its framework imported at the top of the file, so
    unpickling the class imports it (what hashing the artifacts meanwhile could overlap)."""

    LABELS = ["setosa", "versicolor", "virginica"]

    def __init__(self, artifacts):
        self.clf = joblib.load(artifacts["weights"])
        assert isinstance(self.clf, sklearn.linear_model.LogisticRegression)

    def predict(self, data):
        return [self.LABELS[i] for i in self.clf.predict(data)]

    def model_test(self):
        assert self.predict([[5.1, 3.5, 1.4, 0.2]]) == ["setosa"]


def package_with_ballast(tmp: Path, base: str) -> tuple[str, str]:
    """The iris model (ImportingModel) with a 1 GiB artifact beside its weights (zeros: cheap to gzip;
    hashing costs the same for any bytes)."""
    import vci
    from vci.build import Options
    from vci.build.package import package
    from vci.config import load_settings

    settings = load_settings({"store": str(tmp / "store"), "project": "iris"}, cwd=tmp, environ={})
    ballast = tmp / "ballast.bin"
    with open(ballast, "wb") as f:
        for _ in range(GiB // (1 << 24)):
            f.write(bytes(1 << 24))
    run = vci.init("iris", settings=settings)
    run.log_artifact("weights", tmp / "out" / "model.joblib")  # what package_iris trained
    run.log_artifact("ballast", ballast)
    run.log_model(ImportingModel, artifacts=["weights"])
    run.log_requirements(["scikit-learn"])
    run.commit()
    ballast.unlink()
    package(settings, run.id, Options(base=base, layout=str(tmp / "ballast"), level=1))
    weights = run.manifest["artifacts"]["weights"]["digest"].split(":")[1]
    return f"oci:{tmp / 'ballast'}:{run.id}", f"/opt/vci/model/blobs/sha256/{weights}"


def main() -> None:
    with workdir() as (tmp, base):
        image, _, blob = package_iris(tmp, base, "with-pyc")
        small_runs, big_runs = measure([(image, blob), package_with_ballast(tmp, base)])
        small = print_breakdown("iris", small_runs)
        big = print_breakdown("iris + a 1 GiB artifact", big_runs)
    phases = sum(big[name] for name in PHASES[3:])
    print(
        f"1 GiB artifact: verification {big['verification']:.2f} s ({GiB / 1e6 / big['verification']:.0f} MB/s), "
        f"read {big['read'] / GiB:.2f} GiB to verify it (once is 1.00); the real server loaded and self-tested in "
        f"{big['server load']:.2f} s, the probe's phases one after the other {phases:.2f} s; iris without it: "
        f"{small['server load']:.2f} s"
    )


if __name__ == "__main__":
    main()
