"""The CLI reference (docs/cli.md), rendered from the commands' own help: `python -m vci.cli.reference`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .main import cli

LAYOUT = {**cli.context_settings, "terminal_width": 100}  # as `vci ... --help` prints it (-h too), at 100 columns
HEADER = (
    "# vci command reference\n\n"
    "Rendered from each command's own `--help` by `python -m vci.cli.reference > docs/cli.md`; a test keeps\n"
    "it in step with the code. Every command that prints a result takes `--output json`; errors exit with\n"
    "the codes of docs/design.md's error tree.\n"
)


def render_reference() -> str:
    """Markdown: the top-level help, then each command's (and each group's subcommands') help."""
    sections = [HEADER, _section("vci", cli, None)]
    root = click.Context(cli, info_name="vci", **LAYOUT)
    for name in cli.list_commands(root):
        command = cli.get_command(root, name)
        sections.append(_section(f"vci {name}", command, root))
        if isinstance(command, click.Group):
            parent = click.Context(command, info_name=name, parent=root, **LAYOUT)
            for sub in command.list_commands(parent):
                sections.append(_section(f"vci {name} {sub}", command.get_command(parent, sub), parent))
    return "\n".join(sections)


def _section(title: str, command, parent) -> str:
    name = title.split()[-1]
    ctx = click.Context(command, info_name=name, parent=parent, **LAYOUT)
    return f"## `{title}`\n\n```\n{command.get_help(ctx)}\n```\n"


def main() -> None:
    text = render_reference()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
