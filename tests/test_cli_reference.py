"""docs/cli.md is the commands' own help: it changes with them."""

from pathlib import Path

from vci.cli.reference import render_reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_the_cli_reference_is_rendered_from_the_current_help():
    assert DOC.read_text() == render_reference(), "regenerate it: python -m vci.cli.reference docs/cli.md"


def test_the_reference_covers_every_command_and_subcommand():
    text = render_reference()
    for title in ("## `vci init`", "## `vci logs`", "## `vci runs list`", "## `vci jenkins trigger`"):
        assert title in text
