"""The `linkage` command line: `commands` holds the group, the other modules its subcommands."""

from infra.cli.commands import main

__all__ = ["main"]
