"""Every command, given wrong input, answers with one clear error and an exit code of the VciError tree:
no traceback reaches a user without --debug."""

import json

import click
import pytest

from vci.cli.main import LazyGroup, cli, main
from vci.errors import VciError


def leaf_commands() -> list[list[str]]:
    """Every command path: ``[name]`` for a command, ``[group, sub]`` for each of a group's."""
    root = click.Context(cli, info_name="vci")
    paths = []
    for name in sorted(LazyGroup.COMMANDS):
        command = cli.get_command(root, name)
        if isinstance(command, click.Group):
            paths += [[name, sub] for sub in command.list_commands(click.Context(command, parent=root))]
        else:
            paths.append([name])
    return paths


WRONG = [
    ["--no-such-option"],
    ["no-such-run!!"],
    ["20261201-000000-deadbeef", "--env", "nowhere"],
    ["--env", "nowhere"],
    ["--output", "json", "--no-such-option"],
]
EXIT_CODES = {2, 130, 143} | {cls.exit_code for cls in [VciError, *VciError.__subclasses__()]}
for cls in list(VciError.__subclasses__()):
    EXIT_CODES |= {sub.exit_code for sub in cls.__subclasses__()}


@pytest.fixture(autouse=True)
def nowhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `vci init DIR` and friends write here, nowhere else
    for name in ("VCI_DEBUG", "VCI_CONFIG", "KUBECONFIG", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VCI_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("VCI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VCI_JENKINS_URL", "http://127.0.0.1:9")  # nothing listens: refused at once


@pytest.mark.parametrize("path", leaf_commands(), ids=" ".join)
def test_wrong_input_gives_one_error_line_and_a_known_code(path, capsys):
    for args in WRONG:
        with pytest.raises(SystemExit) as ended:
            main([*path, *args])
        err = capsys.readouterr().err
        code = ended.value.code
        assert "Traceback" not in err, (path, args, err)
        assert code == 0 or code in EXIT_CODES, (path, args, code, err)
        if code:
            assert err.strip(), (path, args)  # says why
            if "--output" in args and code == 2:
                assert json.loads(err.strip().splitlines()[-1])["code"]  # the machine contract
