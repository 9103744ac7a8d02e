"""The command line's entry and dispatch: parses with the grammar of `cli/parser.py`, turns
what was parsed into the command's typed parameters (this is the one module that reads an
argparse `Namespace`), runs the command, and maps errors to exit codes.

User errors (`ReconcilerError`) print a short message and exit 1; anything else is a bug and
shows its traceback; Ctrl-C exits 130, SIGTERM 143.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TextIO, assert_never, cast

from reconciler.api.pacer import PaceSettings
from reconciler.api.settings import known_keys
from reconciler.cli import completion
from reconciler.cli.commands import apply, check, export, plan, restore, show, validate
from reconciler.cli.commands.apply import ApplyParams, SavedPlan
from reconciler.cli.commands.check import CheckFormat, CheckParams
from reconciler.cli.commands.export import ExportParams
from reconciler.cli.commands.plan import PlanParams, SaveTo
from reconciler.cli.commands.restore import RestoreParams
from reconciler.cli.commands.show import ShowParams
from reconciler.cli.commands.validate import ValidateParams
from reconciler.cli.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Declared,
    Format,
)
from reconciler.cli.connect import Connection
from reconciler.cli.console import Console
from reconciler.cli.parser import CHECK_FORMATS, UsageError, build_parser
from reconciler.desired.model import Scope
from reconciler.emulator import DEFAULT_API_KEY
from reconciler.emulator.cli import cmd_emulator
from reconciler.errors import InputError, Problem, ReconcilerError
from reconciler.keys import MIN_MASKED_LENGTH
from reconciler.plan.guards import GuardLimits
from reconciler.plan.signing import known_plan_keys

EXIT_USAGE = 1  # an error like any other: 2 means changes under --detailed-exitcode

Parameters = (ValidateParams | PlanParams | ApplyParams | ShowParams | ExportParams
              | RestoreParams | CheckParams)


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run one command; return its exit code. Never raises for user errors."""
    console = Console(out=stdout or sys.stdout, err=stderr or sys.stderr,
                      stdin=stdin or sys.stdin, env=dict(os.environ) if env is None else env)
    console.secrets = known_keys(console.env, None) + known_plan_keys(console.env, None)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    except UsageError as usage:
        console.error(usage.without_values(sys.argv[1:] if argv is None else argv))
        return EXIT_USAGE
    console.quiet, console.verbose, console.no_color = args.quiet, args.verbose, args.no_color
    console.secrets = known_keys(console.env, args.api_key_file) + known_plan_keys(
        console.env, getattr(args, "plan_key_file", None))
    if args.sandbox:
        console.secrets += (DEFAULT_API_KEY,)
    served = args.api_key if args.command == "emulator" else None  # the emulator's own key
    if _holds_a_secret(sys.argv[1:] if argv is None else argv, console.secrets, served):
        console.error(SECRET_IN_ARGUMENTS)
        return EXIT_USAGE
    if served:
        console.secrets += (served,)
    terminated: list[int] = []
    with _logging_to(console), _interruptible(terminated):
        try:
            return _run(lambda: _dispatch(parser, args, console), console)
        except KeyboardInterrupt as stop:  # a command may say what the stop left behind
            console.error(f"interrupted: {stop.args[0]}" if stop.args else "interrupted")
            return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


SECRET_IN_ARGUMENTS = (
    "error: a value on the command line holds the API key or the plan key, where neither "
    "belongs (it would be shown, or become a file's name): nothing was done. Give the API key "
    "with $CUSTOMGPT_API_KEY or --api-key-file FILE, the plan key with $RECONCILER_PLAN_KEY or "
    "--plan-key-file FILE")


def _holds_a_secret(argv: Sequence[str], secrets: Sequence[str], served: str | None) -> bool:
    """Whether a value on the command line holds one of the `secrets` the run knows (of 8
    characters or more), other than as `served`, the key `reconciler emulator --api-key`
    is given to serve."""
    for token in argv:
        if served and (token == served or token.endswith(f"={served}")):
            continue
        if any(len(secret) >= MIN_MASKED_LENGTH and secret in token for secret in secrets):
            return True
    return False


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace, console: Console) -> int:
    """Run the command `args` names. The emulator, a program of its own, reads its options
    itself; completion prints the grammar."""
    if args.command == "emulator":
        return cmd_emulator(args, console)
    if args.command == "completion":
        return completion.run(parser, args.shell, console)
    return run_command(parameters(args), console)


def run_command(params: Parameters, console: Console) -> int:
    """Run the command whose parameters `params` are; return its exit code."""
    match params:
        case ValidateParams():
            return validate.run(params, console)
        case PlanParams():
            return plan.run(params, console)
        case ApplyParams():
            return apply.run(params, console)
        case ShowParams():
            return show.run(params, console)
        case ExportParams():
            return export.run(params, console)
        case RestoreParams():
            return restore.run(params, console)
        case CheckParams():
            return check.run(params, console)
    assert_never(params)


def parameters(args: argparse.Namespace) -> Parameters:
    """What the command named on the command line receives, from what the parser parsed.
    Raises InputError for options that cannot go together."""
    connection = _connection(args)
    command: str = args.command
    if command == "validate":
        return ValidateParams(paths=_paths(args))
    if command == "plan":
        if args.plan_key_file and not args.out:
            raise InputError([Problem("--plan-key-file signs the saved plan: it needs --out "
                                      "FILE")])
        return PlanParams(
            connection=connection, declared=_declared(args),
            save=SaveTo(args.out, args.plan_key_file) if args.out else None,
            format=_format(args.format), detailed_exitcode=args.detailed_exitcode,
            limits=_limits(args))
    if command == "apply":
        return ApplyParams(
            connection=connection, source=_apply_source(args), auto_approve=args.auto_approve,
            dry_run=args.dry_run, backup=not args.no_backup, backup_dir=args.backup_dir,
            report=args.report, limits=_limits(args))
    if command == "show":
        return ShowParams(plan_file=args.plan_file, format=_format(args.format))
    if command == "export":
        return ExportParams(
            connection=connection, projects=tuple(args.project), scope=Scope(args.scope),
            pin=args.pin, with_messages=args.with_messages, output=args.output,
            force=args.force)
    if command == "restore":
        return RestoreParams(connection=connection, backup_file=args.backup_file,
                             resend_prompts=args.resend_prompts, max_sends=args.max_sends)
    if command == "check":
        return CheckParams(connection=connection, declared=_declared(args),
                           format=cast(CheckFormat, args.format), out=args.out,
                           min_pass_rate=args.min_pass_rate, also=_also_written(args))
    raise ValueError(f"no parameters for the command {command!r}")


def _also_written(args: argparse.Namespace) -> tuple[tuple[CheckFormat, str], ...]:
    """`--write FORMAT FILE`…: each format one of `check`'s; InputError otherwise."""
    written = tuple((fmt, path) for fmt, path in args.write or ())
    for fmt, _ in written:
        if fmt not in CHECK_FORMATS:
            close = difflib.get_close_matches(fmt, CHECK_FORMATS, n=1)
            meant = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError([Problem(f"--write: the format must be one of "
                                      f"{', '.join(CHECK_FORMATS)}{meant}")])
    return cast(tuple[tuple[CheckFormat, str], ...], written)


def _connection(args: argparse.Namespace) -> Connection:
    return Connection(
        base_url=args.base_url, api_key_file=args.api_key_file, timeout=args.timeout,
        send_timeout=args.send_timeout,
        pace=PaceSettings(share=args.rate_share, max_rate=args.max_rate),
        parallelism=args.parallelism, insecure_http=args.insecure_http, sandbox=args.sandbox)


def _paths(args: argparse.Namespace) -> tuple[str, ...]:
    """The desired-state files and directories: -f PATH… then the positional PATH…."""
    return (*(args.files or ()), *args.paths)


def _declared(args: argparse.Namespace) -> Declared:
    """The desired state `plan`, `apply -f` and `check` read; InputError without a path."""
    if not _paths(args):
        raise InputError([Problem(f"{args.command} needs at least one desired-state file or "
                                  "directory (-f PATH or PATH)")])
    return Declared(files=_paths(args), projects=tuple(args.project or ()))


def _apply_source(args: argparse.Namespace) -> Declared | SavedPlan:
    """`apply`'s source: the declared state (-f) or a saved plan (--plan), never both."""
    if bool(_paths(args)) == bool(args.plan):
        raise InputError([Problem("apply needs either desired-state files (-f PATH… or "
                                  "PATH…) or --plan FILE (not both)")])
    if args.plan_key_file and not args.plan:
        raise InputError([Problem("--plan-key-file checks the signature of a saved plan: it "
                                  "needs --plan FILE")])
    if args.plan and args.project:
        raise InputError([Problem("--project cannot be combined with --plan: a reviewed plan is "
                                  "applied whole (make a plan with --project instead)")])
    return SavedPlan(args.plan, args.plan_key_file) if args.plan else _declared(args)


def _limits(args: argparse.Namespace) -> GuardLimits:
    return GuardLimits(allow_mass_delete=args.allow_mass_delete, max_deletes=args.max_deletes,
                       max_sends=args.max_sends)


def _format(name: str) -> Format:
    return cast(Format, name)  # one of FORMATS: the parser's choices


@contextmanager
def _logging_to(console: Console) -> Iterator[None]:
    """Send reconciler's log records to the console's stderr for the command, then restore
    the logger as it was (commands also run in-process, from tests and other programs)."""
    logger = logging.getLogger("reconciler")
    saved = (logger.handlers, logger.propagate, logger.level)
    level = {0: logging.WARNING, 1: logging.INFO}.get(console.verbose, logging.DEBUG)
    handler = logging.StreamHandler(console.err)
    handler.addFilter(_Cleaned(console))
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.WARNING if console.quiet else level)  # -q keeps warnings
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])


class _Cleaned(logging.Filter):
    """Makes each log record's text safe to write (`Console.clean`)."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.console.clean(record.getMessage()), None
        return True


@contextmanager
def _interruptible(received: list[int]) -> Iterator[None]:
    """SIGINT and SIGTERM both stop the command cleanly (KeyboardInterrupt, which asyncio
    turns into cancelling the run), whatever dispositions the process inherited: a background
    job of a non-interactive shell starts with SIGINT ignored, and Python then installs no
    handler for it. SIGTERM is noted in `received` (exit 143 instead of 130). Restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum: int, frame: object) -> None:
        received.append(signum)
        signal.raise_signal(signal.SIGINT)

    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def _run(command: Callable[[], int], console: Console) -> int:
    """Run the command; user errors become exit 1 with their message."""
    try:
        return command()
    except InputError as error:
        for problem in error.problems:
            console.error(f"error: {problem}")
        return EXIT_ERROR
    except ReconcilerError as error:
        console.error(f"error: {error}")
        return EXIT_ERROR
