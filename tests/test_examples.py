"""Every example runs as its README says, and gives its expected output."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_iris_whole_journey(tmp_path):
    env = {**os.environ, "VCI_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("VCI_STORE", None)
    try:
        out = subprocess.run([sys.executable, str(ROOT / "examples" / "iris" / "main.py")], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["loaded_prediction"] == ["setosa"]
        assert result["served_prediction"] == ["setosa", "virginica"]
        assert (tmp_path / ".vci" / "runs" / f"{result['run_id']}.json").is_file()
    finally:
        subprocess.run([sys.executable, "-m", "vci", "undeploy", "--env", "staging"], cwd=tmp_path, env=env,
                       capture_output=True, timeout=60)
