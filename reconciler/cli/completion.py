"""`reconciler completion bash|zsh`: a shell completion script generated from the parser itself
(by shtab), so that it always knows every command, option and choice there is."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import shtab

from reconciler.cli.console import Console

SHELLS = ("bash", "zsh")

# Options whose value is a path: the shell offers file (or directory) names for them.
_FILE_METAVARS = frozenset({"PATH", "FILE", "BACKUP_FILE"})
_DIRECTORY_METAVARS = frozenset({"DIR"})


def add_completion_command(commands: Any) -> None:
    """Register `completion SHELL` on `commands` (an argparse sub-parsers object)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "completion", help="Print a shell completion script for bash or zsh.",
        description="Print a completion script for bash or zsh, made from this version's "
                    "commands and options.",
        epilog="examples:\n"
               "  reconciler completion bash > ~/.local/share/bash-completion/completions/"
               "reconciler\n"
               "  reconciler completion zsh > \"${fpath[1]}/_reconciler\"",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete for")


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for `shell`, with file names offered for path options."""
    for action in _actions(parser):
        if action.metavar in _FILE_METAVARS:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
        elif action.metavar in _DIRECTORY_METAVARS:
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
    return shtab.complete(parser, shell=shell)


def run(parser: argparse.ArgumentParser, shell: str, console: Console) -> int:
    """Print the script of `parser` (the whole grammar) for `shell`."""
    console.result(completion_script(parser, shell))
    return 0


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
