"""``python -m vci`` runs the command line."""

from .cli.main import main

main()
