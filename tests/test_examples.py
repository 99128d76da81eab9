"""Every example runs as its README says, and gives its expected output."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_iris_whole_journey(tmp_path):
    env = {**os.environ, "VCI_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("VCI_STORE", None)
    try:
        out = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "iris" / "main.py")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["loaded_prediction"] == ["setosa"]
        assert result["served_prediction"] == ["setosa", "virginica"]
        assert result["smoke_test_passed"] and result["promoted"] == "succeeded"
        assert result["rolled_back_to_first"] and result["production_after_rollback"] == result["version"]
        assert result["releases"] == 3
        assert (tmp_path / ".vci" / "runs" / f"{result['run_id']}.json").is_file()
    finally:
        for environment in ("staging", "production"):
            subprocess.run(
                [sys.executable, "-m", "vci", "undeploy", "--env", environment],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                timeout=60,
            )


EXAMPLES = ROOT / "examples"
OWN_TESTS = {"iris", "tensorflow_annoy"}  # each checked by a test of its own (tensorflow_annoy: tests/build/)
OTHERS = sorted(p.name for p in EXAMPLES.iterdir() if (p / "main.py").is_file() and p.name not in OWN_TESTS)


def expected_output(example: str) -> dict:
    """The JSON line the example's README promises (indented, starting with {"run_id")."""
    for line in (EXAMPLES / example / "README.md").read_text().splitlines():
        if line.strip().startswith('{"run_id"'):
            return json.loads(line)
    raise AssertionError(f"examples/{example}/README.md shows no expected output line")


def test_every_example_has_a_readme_with_its_commands():
    assert {
        "nearest_neighbors",
        "sklearn",
        "xgboost",
        "lightgbm",
        "torch",
        "keras",
        "onnx",
        "statsmodels",
        "transformers",
        "functions",
        "catboost",
        "spacy",
        "prophet",
        "sentence_transformers",
    } <= set(OTHERS)
    for example in [*OWN_TESTS, *OTHERS]:
        readme = (EXAMPLES / example / "README.md").read_text()
        assert f"python examples/{example}/main.py" in readme, example


@pytest.mark.parametrize("example", OTHERS)
def test_example_prints_what_its_readme_says(tmp_path, example):
    env = {**os.environ, "VCI_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    env.pop("VCI_STORE", None)
    deploys = "deploy(" in (EXAMPLES / example / "main.py").read_text()
    try:
        out = subprocess.run(
            [sys.executable, str(EXAMPLES / example / "main.py")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert (tmp_path / ".vci" / "runs" / f"{result.pop('run_id')}.json").is_file()
        expected = expected_output(example)
        expected.pop("run_id")
        assert result == expected
    finally:
        if deploys:
            subprocess.run(
                [sys.executable, "-m", "vci", "undeploy", "--env", "staging"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                timeout=60,
            )
