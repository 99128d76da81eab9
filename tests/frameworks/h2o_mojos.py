"""Four tiny H2O models trained on iris by H2O itself, exported as MOJOs, with H2O's own predictions on test rows.

Training starts H2O's server (a JVM, from the h2o package's jar): about 12 s here. ``trained()`` does it in a
child process once per machine, h2o version and version of this file, keeping the MOJOs and H2O's answers in
the test cache (``VCI_TEST_CACHE``/h2o-mojos-VERSION-HASH); the child shuts the server down and waits until
its JVM has exited. Run as a script (``python h2o_mojos.py OUT``) it is that child.
"""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from images import cache_root

NAMES = ["sl", "sw", "pl", "pw"]
SPECIES = ["setosa", "versicolor", "virginica"]
# name -> (estimator, its arguments, inputs, response): one per model category vci serves, and one it refuses
MODELS = {
    "multinomial": ("H2OGradientBoostingEstimator", {"ntrees": 5, "max_depth": 3}, NAMES, "species"),
    "binomial": ("H2OGeneralizedLinearEstimator", {"family": "binomial"}, ["sl", "sw", "species"], "long"),
    "regression": ("H2OGradientBoostingEstimator", {"ntrees": 5, "max_depth": 3}, ["sw", "pl", "pw", "species"], "sl"),
    "clustering": ("H2OKMeansEstimator", {"k": 3}, NAMES, None),  # a category vci refuses
}


def iris_records() -> list[dict]:
    """Iris as records: the four measures, the species' name, and ``long`` (a petal over 4.5 cm: yes or no)."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    records = [dict(zip(NAMES, map(float, row), strict=True)) for row in X]
    for record, label in zip(records, y, strict=True):
        record |= {"species": SPECIES[label], "long": "yes" if record["pl"] > 4.5 else "no"}
    return records


def scoring_records() -> list[dict]:
    """Every tenth iris row, then rows H2O takes as missing values: a None measure, an unknown species."""
    rows = iris_records()[::10]
    return [*rows, {**rows[3], "sw": None, "pl": None}, {**rows[7], "species": "martian"}, {**rows[9], "species": None}]


def trained() -> Path:
    """The cache directory holding ``NAME.zip`` (a MOJO) and ``predictions.json`` (H2O's answers to
    ``scoring_records()``, per model), trained now when it is not there yet."""
    recipe = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]  # this file: the models, the rows
    done = cache_root() / f"h2o-mojos-{metadata.version('h2o')}-{recipe}"
    if (done / "predictions.json").is_file():
        return done
    done.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".h2o-mojos-", dir=done.parent))
    try:
        here = Path(__file__).resolve().parent
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here.parent), os.environ.get("PYTHONPATH", "")])}
        done_now = subprocess.run([sys.executable, __file__, str(scratch)], timeout=300, env=env, capture_output=True)
        assert done_now.returncode == 0, f"training H2O's models failed: {done_now.stderr.decode()[-3000:]}"
        try:
            scratch.rename(done)
        except OSError:  # another run trained them meanwhile: theirs stand
            pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return done


def _free_port_pair() -> int:
    """A port N with N+1 free too (H2O's REST API listens on N, its cluster on N+1)."""
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            try:
                b.bind(("127.0.0.1", a.getsockname()[1] + 1))
            except OSError:
                continue
            return a.getsockname()[1]
    raise RuntimeError("no two adjacent free ports for H2O")


def _columns(records: list[dict]) -> dict[str, list]:
    return {name: [record[name] for record in records] for name in records[0]}


def main(out: Path) -> None:
    import h2o
    from h2o import estimators

    h2o.init(port=_free_port_pair(), nthreads=2, max_mem_size="512M", bind_to_localhost=True, verbose=False)
    server = h2o.connection().local_server._process
    try:
        types = {"species": "enum", "long": "enum"}
        frame = h2o.H2OFrame(_columns(iris_records()), column_types=types)
        tests = h2o.H2OFrame(_columns(scoring_records()), column_types=types)
        answers = {}
        for name, (estimator, arguments, inputs, response) in MODELS.items():
            model = getattr(estimators, estimator)(seed=1, **arguments)
            model.train(x=inputs, y=response, training_frame=frame)
            os.replace(model.download_mojo(str(out)), out / f"{name}.zip")
            answers[name] = model.predict(tests).as_data_frame(use_pandas=False, header=True)
        (out / "predictions.json").write_text(json.dumps(answers))
    finally:
        h2o.cluster().shutdown()
        try:
            server.wait(timeout=30)
        finally:
            server.kill()  # a no-op once it has exited
    (out / "jvm.json").write_text(json.dumps({"pid": server.pid, "returncode": server.returncode}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
