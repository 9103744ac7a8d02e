"""The command line: parses arguments, runs one command, prints, and maps errors to exit codes.

This is the only module that prints. Each command is one function returning an exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from reconciler import __version__
from reconciler.errors import InputError, ReconcilerError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERRUPTED = 130


@dataclass
class Console:
    """Where a command writes: results to `out`, everything for people to `err`."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    quiet: bool = False
    verbose: int = 0

    def result(self, text: str) -> None:
        """Write a command's result (what a pipeline reads) to stdout."""
        self.out.write(text if text.endswith("\n") else text + "\n")

    def info(self, text: str) -> None:
        """Write a message for people to stderr, unless -q."""
        if not self.quiet:
            self.err.write(text + "\n")

    def error(self, text: str) -> None:
        """Write an error to stderr, always."""
        self.err.write(text + "\n")


Command = Callable[[argparse.Namespace, Console], int]


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    """`reconciler validate -f PATH…`: check files without touching the API."""
    from reconciler.loader import load_desired

    state = load_desired(args.files, env=console.env)
    console.result(
        f"OK: {len(state.projects)} projects, {state.conversation_count} conversations"
    )
    return EXIT_OK


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options accepted before or after the command (DESIGN §7)."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument("--base-url", default=default(None), help="API base URL "
                       "(default $CUSTOMGPT_BASE_URL or https://app.customgpt.ai)")
    group.add_argument("--api-key-file", default=default(None), metavar="FILE",
                       help="read the API token from FILE instead of $CUSTOMGPT_API_KEY")
    group.add_argument("--timeout", type=float, default=default(30.0), metavar="SECONDS",
                       help="per-request timeout (default 30)")
    group.add_argument("--parallelism", type=_positive_int, default=default(8), metavar="N",
                       help="concurrent requests when listing and applying (default 8)")
    group.add_argument("--insecure-http", action="store_true", default=default(False),
                       help="allow plain http:// to a host that is not loopback")
    group.add_argument("--sandbox", action="store_true", default=default(False),
                       help="run against a local emulator backed by .reconciler/sandbox.db")
    group.add_argument("-v", "--verbose", action="count", default=default(0),
                       help="more detail (-vv: every request, with timing)")
    group.add_argument("-q", "--quiet", action="store_true", default=default(False),
                       help="errors only")
    group.add_argument("--no-color", action="store_true", default=default(False),
                       help="never colour the output")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _add_files_option(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument("-f", "--file", dest="files", action="append", required=required,
                        metavar="PATH", help="desired-state YAML file or directory (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    """The whole command-line grammar."""
    parser = argparse.ArgumentParser(
        prog="reconciler",
        description="Conversations as code for CustomGPT.ai.",
    )
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    _add_global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = commands.add_parser(
        "validate", help="check desired-state files",
        description="Check desired-state files against the schema and every rule, offline.",
        epilog="example: reconciler validate -f conversations/",
    )
    _add_files_option(validate)
    _add_global_options(validate, suppress=True)
    validate.set_defaults(handler=cmd_validate)

    from reconciler.emulator.cli import add_emulator_command

    add_emulator_command(commands, global_options=lambda p: _add_global_options(p, suppress=True))
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run one command; return its exit code. Never raises for user errors."""
    console = Console(
        out=stdout or sys.stdout,
        err=stderr or sys.stderr,
        env=dict(os.environ) if env is None else env,
    )
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    console.quiet = args.quiet
    console.verbose = args.verbose
    handler: Command = args.handler
    try:
        return handler(args, console)
    except InputError as error:
        for problem in error.problems:
            console.error(f"error: {problem}")
        return EXIT_ERROR
    except ReconcilerError as error:
        console.error(f"error: {error}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        console.error("interrupted")
        return EXIT_INTERRUPTED
