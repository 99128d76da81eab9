"""Benchmark of request validation: which validator, and what checking each /predict costs the server.

Part 1 times one check of the iris request (``[[5.1, 3.5, 1.4, 0.2]]`` against the schema vci infers
from the iris examples: rows of 4 numbers), valid and invalid, in this process, with each candidate:
vci's compiled checker (vci.validator), jsonschema (Draft 2020-12, with ``best_match`` for the message),
fastjsonschema (compiled to Python) and jsonschema-rs (Rust), those installed. Part 2 runs the same
server (a scikit-learn LogisticRegression on iris, one worker) with validation on and off
(``--no-validate``), alternating, ``--rounds`` times each, and prints the median wrk figures at
``--connections`` and the ratio on/off (the target is at least 0.9). Never asserts.

    python benchmarks/validation.py [--duration 5] [--connections 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
_spec = importlib.util.spec_from_file_location("serve_benchmark", REPO / "benchmarks" / "serve.py")
assert _spec and _spec.loader
serve_benchmark = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serve_benchmark)  # its iris model directory, wrk driver, free port and probe

EXAMPLES = [[[5.1, 3.5, 1.4, 0.2]], [[6.7, 3.0, 5.2, 2.3]]]
GOOD, BAD = json.loads(serve_benchmark.ROW), [[5.1, 3.5, 1.4, "0.2"]]


def candidates(schema: dict) -> dict:
    """``{name: check(value) -> message or None}`` for each validator installed here."""
    from vci.validator import Validator

    found = {"vci.validator (compiled closures)": Validator(schema).problem}
    try:
        import jsonschema

        reference = jsonschema.Draft202012Validator(schema)
        found["jsonschema 4 (Draft 2020-12)"] = lambda v: (
            None if reference.is_valid(v) else jsonschema.exceptions.best_match(reference.iter_errors(v)).message
        )
    except ImportError:
        pass
    try:
        import fastjsonschema

        compiled = fastjsonschema.compile(schema)
        found["fastjsonschema (generated code)"] = lambda v: _raised(compiled, v, fastjsonschema.JsonSchemaException)
    except ImportError:
        pass
    try:
        import jsonschema_rs

        rust = jsonschema_rs.validator_for(schema)
        found["jsonschema-rs (Rust)"] = lambda v: _raised(rust.validate, v, jsonschema_rs.ValidationError)
    except ImportError:
        pass
    return found


def _raised(check, value, kind) -> str | None:
    try:
        check(value)
    except kind as exc:
        return str(exc).splitlines()[0]
    return None


def micro(schema: dict) -> None:
    print("one check of the iris request, in this process (best of 5 x 20,000):")
    for name, check in candidates(schema).items():
        good, bad = (
            min(timeit.repeat(lambda v=v, check=check: check(v), number=20_000, repeat=5)) / 20_000 for v in (GOOD, BAD)
        )
        print(f"  {name:36} valid {good * 1e6:6.2f} us   invalid {bad * 1e6:7.2f} us   says: {check(BAD)}")


def served(model_dir: Path, args, validate: bool) -> dict:
    proc, port = serve_benchmark.spawn_vci(model_dir, *([] if validate else ["--no-validate"]))
    try:
        serve_benchmark.load_wrk(port, args.connections, 1)  # warm up
        return serve_benchmark.load_wrk(port, args.connections, args.duration)
    finally:
        proc.terminate()
        proc.wait(30)


def with_schemas(model_dir: Path, schema: dict) -> None:
    """Give the benchmark's model directory the schemas a run logged with the iris examples has."""
    from vci.modeldir import encode_manifest

    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["schemas"] = {"input": schema, "output": None, "from": {"input": "examples", "output": None}}
    (model_dir / "manifest.json").write_bytes(encode_manifest(manifest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from vci.schema import from_examples

    schema = from_examples(EXAMPLES)
    assert schema is not None
    print(f"schema: {json.dumps(schema)}")
    micro(schema)
    model_dir = serve_benchmark.build_model_dir(Path(tempfile.mkdtemp()) / "model")
    with_schemas(model_dir, schema)
    results: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(args.rounds):
        for validate in (False, True):
            results[validate].append(served(model_dir, args, validate))
    print(f"POST /predict, wrk, {args.connections} connections, {args.duration:g} s, median of {args.rounds} rounds:")
    median = {v: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")} for v, rs in results.items()}
    for validate, label in ((False, "validation off (--no-validate)"), (True, "validation on")):
        m, each = median[validate], ", ".join(f"{r['rps']:.0f}" for r in results[validate])
        print(f"  {label:32} {m['rps']:7.0f} req/s  p50 {m['p50']:5.2f} ms  p99 {m['p99']:5.2f} ms  (rounds: {each})")
    print(f"  throughput ratio on/off: {median[True]['rps'] / median[False]['rps']:.3f}x (target >= 0.9x)")


if __name__ == "__main__":
    main()
