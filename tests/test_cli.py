"""The command line: results on stdout, one-line errors with their exit codes, no heavy imports for --help."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def vci(*args, cwd, env=None, check=True):
    full_env = {**os.environ, "VCI_CACHE_DIR": str(Path(cwd) / "cache"), **(env or {})}
    full_env.pop("VCI_DEBUG", None)
    out = subprocess.run(
        [sys.executable, "-m", "vci", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )
    if check and out.returncode != 0:
        raise AssertionError(f"vci {' '.join(args)} exited {out.returncode}: {out.stderr}")
    return out


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """The iris example's trained weights; its train.py loaded by path under a name of its own (other
    examples' tests put their own `train` module in sys.modules)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("iris_example_train", ROOT / "examples" / "iris" / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.train(str(tmp_path_factory.mktemp("iris")))


def test_help_imports_nothing_heavy():
    code = (
        "import sys, io, contextlib\nfrom vci.cli.main import cli\nbuf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n    cli.main(['--help'], standalone_mode=False)\n"
        "print([m for m in ('boto3', 'botocore', 'kubernetes', 'docker', 'cloudpickle', 'yaml', 'requests',"
        " 'numpy', 'grpc') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_log_list_show_json(tmp_path, weights):
    out = vci(
        "log",
        "--project",
        "iris",
        "--model",
        f"{ROOT}/examples/iris/model.py:Model",
        "--artifact",
        f"weights={weights}",
        "--requirements",
        f"{ROOT}/examples/iris/requirements.txt",
        "--examples",
        f"{ROOT}/examples/iris/examples.json",
        "--output",
        "json",
        cwd=tmp_path,
    )
    result = json.loads(out.stdout)
    assert result["project"] == "iris" and result["version"].startswith("sha256:")
    assert set(result["artifacts"]) == {"weights"}
    listed = json.loads(vci("runs", "list", "-o", "json", cwd=tmp_path).stdout)
    assert [r["id"] for r in listed["runs"]] == [result["run_id"]]
    shown = json.loads(vci("runs", "show", result["run_id"], "-o", "json", cwd=tmp_path).stdout)
    assert shown["version"] == result["version"]
    assert any(r.startswith("scikit-learn==") for r in shown["manifest"]["requirements"])
    assert shown["manifest"]["examples"]["expected_outputs"] == [["setosa"], ["virginica"]]
    text = vci("runs", "show", result["run_id"], cwd=tmp_path).stdout
    assert "model:" in text and "vci_user_model.Model" in text


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (["log", "--artifact", "weights"], 2, "must be KEY=PATH"),
        (["log", "--model", "nofile.py:Model"], 2, "does not exist"),
        (["runs", "show", "not-a-run"], 2, "is not a run id"),
        (["runs", "show", "20200101-000000-abcd"], 6, "is not in the store"),
        (["log", "--requirements", "missing.txt"], 5, "does not exist"),
    ],
)
def test_bad_input_one_line_error(tmp_path, args, code, fragment):
    out = vci(*args, cwd=tmp_path, check=False)
    assert out.returncode == code, out.stderr
    assert fragment in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and out.stdout == ""


def test_json_errors_and_debug_traceback(tmp_path):
    out = vci("runs", "show", "20200101-000000-abcd", "-o", "json", cwd=tmp_path, check=False)
    assert json.loads(out.stderr) == {"error": json.loads(out.stderr)["error"], "code": "not_found"}
    out = vci("--debug", "runs", "show", "20200101-000000-abcd", cwd=tmp_path, check=False)
    assert "Traceback" in out.stderr and out.returncode == 6


def test_bad_config_file(tmp_path):
    (tmp_path / "vci.yaml").write_text("stor: x\n")
    out = vci("runs", "list", cwd=tmp_path, check=False)
    assert out.returncode == 3 and "unknown setting 'stor'" in out.stderr


def test_version():
    from vci import __version__

    out = subprocess.run([sys.executable, "-m", "vci", "--version"], capture_output=True, text=True)
    assert __version__ in out.stdout


def test_history_text_has_a_column_per_history_field(tmp_path):
    from vci.ledger import Ledger, make_record
    from vci.store.local import LocalStore

    record = make_record(
        release_id="r20261124-120000-abcd",
        environment="production",
        action="promote",
        outcome="succeeded",
        digest="sha256:" + "ab" * 32,
        run_id="20261124-1200-abcd",
        approver="alice",
        environ={"VCI_USER": "ci-bot"},
    )
    Ledger(LocalStore(tmp_path / "store")).append(record)
    out = vci("history", "--env", "production", "--store", str(tmp_path / "store"), cwd=tmp_path).stdout
    header, row = out.splitlines()
    assert header.split() == [
        "RELEASE",
        "WHEN",
        "ACTION",
        "DIGEST",
        "RUN",
        "STRATEGY",
        "WHO",
        "APPROVER",
        "CI",
        "OUTCOME",
    ]
    assert row.split() == [
        "r20261124-120000-abcd",
        record.when,
        "promote",
        "sha256:abababababab",
        "20261124-1200-abcd",
        "direct",
        "ci-bot",
        "alice",
        "-",
        "succeeded",
    ]


def test_a_bug_is_one_line_and_its_traceback_only_with_debug(monkeypatch, capsys, tmp_path):
    import vci.cli.envs
    from vci.cli.main import main

    def broken(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VCI_DEBUG", raising=False)
    monkeypatch.setattr(vci.cli.envs, "settings_for", broken)
    for argv, traced in ((["envs"], False), (["--debug", "envs"], True)):
        with pytest.raises(SystemExit) as ended:
            main(argv)
        err = capsys.readouterr().err
        assert ended.value.code == 1 and "internal error: KeyError: 'surprise' (a bug in vci" in err
        assert ("Traceback" in err) is traced
