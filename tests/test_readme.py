"""The README's user's view runs as written (with and without its explicit commit), and its commands exist."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def users_view() -> str:
    return re.search(r"```python\n(.*?)```", README, re.S).group(1)


@pytest.mark.parametrize("commit", [True, False], ids=["explicit-commit", "implicit-commit"])
def test_the_users_view_runs_as_written(tmp_path, commit):
    code = users_view()
    assert "run.commit()" in code
    if not commit:  # the seed's shape: log, then deploy (which commits); get_run needs a committed run
        code = "\n".join(line for line in code.splitlines() if not line.startswith(("run.commit()", "vci.get_run")))
    code += "\nprint(run.get_deployed_model().predict([[6.7, 3.0, 5.2, 2.3]]))\n"
    subprocess.run([sys.executable, str(ROOT / "examples/iris/train.py"), "out"], cwd=tmp_path, check=True)
    env = {**os.environ, "VCI_STORE": str(tmp_path / ".vci"), "VCI_CACHE_DIR": str(tmp_path / "cache")}
    try:
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().splitlines()[-1] == "[2]"  # virginica
    finally:
        subprocess.run([sys.executable, "-m", "vci", "undeploy", "--env", "staging"], cwd=tmp_path, env=env)


def shell_lines() -> list[str]:
    """The lines of the README's fenced blocks that are not Python, YAML or JSON."""
    lines, kind = [], None
    for line in README.splitlines():
        if line.startswith("```"):
            kind = None if kind is not None else (line[3:].strip() or "sh")
        elif kind in ("sh", "console", "bash"):
            lines.append(line)
    return lines


def test_every_command_the_readme_shows_exists():
    from vci.cli.main import LazyGroup

    shown = {m.group(1) for line in shell_lines() if (m := re.match(r"\s*vci ([a-z]+)", line))}
    shown |= set(re.findall(r"`vci ([a-z]+)[ `]", README))
    assert shown <= set(LazyGroup.COMMANDS), shown - set(LazyGroup.COMMANDS)
