"""The command-line grammar: every command, option, default, help text and argument type.

`cli/main.py` parses with it and turns what it parsed into the command's typed parameters; no
other module of the tool reads what argparse parsed.
"""

from __future__ import annotations

import argparse
import difflib
import math
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from reconciler import __version__
from reconciler.api.answer_times import FLOOR, MULTIPLE
from reconciler.api.pacer import DEFAULT_SHARE, MAX_MAX_RATE, MIN_MAX_RATE
from reconciler.api.settings import MAX_TIMEOUT
from reconciler.arguments import whole_number
from reconciler.cli.common import EXIT_CODES, FORMATS
from reconciler.cli.completion import add_completion_command
from reconciler.desired.model import MAX_ID, Scope
from reconciler.keys import MIN_MASKED_LENGTH
from reconciler.plan.model import DEFAULT_MAX_DELETE_FRACTION
from reconciler.plan.trials import MAX_REPEAT
from reconciler.text import clipped


class _Parser(argparse.ArgumentParser):
    """argparse, except that a usage error is raised (for `main` to print through the
    console) instead of printed here, never repeats a value that is not an option name (a
    value typed in the wrong place can be the key), and suggests the command, option or
    choice a mistyped one was probably meant to be."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if sys.version_info >= (3, 14):  # argparse's own suggestions: ours are made here
            kwargs.setdefault("suggest_on_error", False)
        super().__init__(*args, **kwargs)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None,
    ) -> argparse.Namespace:
        """Parse `args`; an unrecognized option is suggested among the options of the command
        it was given to (and the global ones). Raises UsageError."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self._unrecognized(extras, command=getattr(parsed, "command", None))
        return parsed

    def _unrecognized(self, words: list[str], *, command: str | None) -> NoReturn:
        options = [word.partition("=")[0] for word in words if word.startswith("-")]
        shown = [clipped(word) for word in words if word.startswith("-") and "=" not in word]
        hidden = len(words) - len(shown)
        message = "unrecognized arguments: " + " ".join(shown)
        if hidden:
            message += f"{' ' if shown else ''}(and {hidden} value(s), not shown)"
        known = self._option_strings(command)
        meant = [match for option in options
                 for match in difflib.get_close_matches(option, known, n=1)]
        if meant:
            message += f"; did you mean {', '.join(dict.fromkeys(meant))}?"
        raise UsageError(f"{self.format_usage()}{self.prog}: error: {message}")

    def _option_strings(self, command: str | None) -> list[str]:
        """The long options accepted with `command` (the global ones when None)."""
        parser: argparse.ArgumentParser = self
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and command in action.choices:
                parser = action.choices[command]
        return [option for action in parser._actions for option in action.option_strings
                if option.startswith("--")]

    def error(self, message: str) -> NoReturn:
        meant = _meant_choice(message)
        message = _INVALID_VALUE.sub(r"\1", message)
        message = _AMBIGUOUS.sub(lambda found: f"{found[1]}{clipped(found[2])}", message)
        if meant:
            message += f"; did you mean {meant!r}?"
        raise UsageError(f"{self.format_usage()}{self.prog}: error: {message}")


def _meant_choice(message: str) -> str | None:
    """For an invalid choice (a command's name, a --format), the allowed one closest to what
    was typed, if one is close; only an allowed value is ever repeated."""
    found = _INVALID_CHOICE.search(message)
    if found is None:
        return None
    typed = found["typed"].strip("'\"")
    choices = [choice.strip().strip("'\"") for choice in found["choices"].split(",")]
    close = difflib.get_close_matches(typed, choices, n=1)
    return close[0] if close else None


class UsageError(Exception):
    """Bad command-line syntax: printed with the usage, exit 1."""

    def without_values(self, argv: Sequence[str]) -> str:
        """The message with every value given on the command line (not an option name)
        written as '…', wherever a type check quoted it (and, unquoted, every value of 8
        characters or more, the length of a key worth masking, but a whole number, which a
        range check repeats)."""
        usage, sep, text = str(self).rpartition(": error: ")
        for token in argv:
            value = token.partition("=")[2] if token.startswith("-") else token
            if value:
                text = text.replace(repr(value), "'…'")
            if len(value) >= MIN_MASKED_LENGTH and not value.isdigit():  # unquoted, as
                text = text.replace(value, "…")  # argparse repeats some (a number may stay)
        return usage + sep + text


_INVALID_CHOICE = re.compile(r"invalid choice: (?P<typed>.*?) \(choose from (?P<choices>.*)\)",
                             re.DOTALL)
_INVALID_VALUE = re.compile(r"(invalid (?:choice|[\w ]+ value)): .*?(?= \(choose from |$)",
                            re.DOTALL)
# "ambiguous option: --p=VALUE could match ...": the option as typed, without its value
_AMBIGUOUS = re.compile(r"(ambiguous option: )(-[^=\s]*)(?:=.*?)?(?= could match )", re.DOTALL)

_positive_int = whole_number(1, MAX_ID)
_repeat = whole_number(1, MAX_REPEAT)
_count = whole_number(0, MAX_ID)


def _number(*, low: float, high: float, what: str, low_included: bool = False
            ) -> Callable[[str], float]:
    """An argparse type: a finite number above `low` (or from `low`, when `low_included`)
    and at most `high` (never nan or inf)."""
    bound = (f"from {low:.10g} to {high:.10g}" if low_included
             else f"above {low:.10g} and at most {high:.10g}")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError("expected a number") from None
        above = low <= value if low_included else low < value
        if not math.isfinite(value) or not above or value > high:
            raise argparse.ArgumentTypeError(f"{what} must be a finite number {bound}")
        return value

    return parse


_seconds = _number(low=0, high=MAX_TIMEOUT, what="seconds")
# Slower than one request a minute, a run of a few hundred requests would take hours.
_rate = _number(low=MIN_MAX_RATE, high=MAX_MAX_RATE, what="requests per minute",
                low_included=True)
_share = _number(low=0, high=1, what="the share")


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options accepted before or after the command."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group(
        "global options", "every command's: how to reach the API, how much to print; given "
        "before or after the command")
    group.add_argument("--base-url", default=default(None), metavar="URL",
                       help="API base URL (default $CUSTOMGPT_BASE_URL or https://app.customgpt.ai)")
    group.add_argument("--api-key-file", default=default(None), metavar="FILE",
                       help="read the API token from FILE instead of $CUSTOMGPT_API_KEY")
    group.add_argument("--timeout", type=_seconds, default=default(30.0), metavar="SECONDS",
                       help="bound on each whole request, answer included (default 30)")
    group.add_argument("--send-timeout", type=_seconds, default=default(300.0),
                       metavar="SECONDS",
                       help="how long a sent message may take to be answered (default 300); "
                            "after a send whose answer was lost, its transcript is watched for "
                            f"it before it is sent again: {MULTIPLE:g}x the longest answer seen "
                            f"in this run, at least {FLOOR:g} s, at most SECONDS (all of it "
                            "until a send has been answered)")
    group.add_argument("--max-rate", type=_rate, default=default(None), metavar="N",
                       help="at most N requests per minute, from 1 (default: as the API's "
                            "limit and --rate-share allow)")
    group.add_argument("--rate-share", type=_share, default=default(DEFAULT_SHARE),
                       metavar="F", help="take at most this share of the API key's advertised "
                       "rate limit, leaving the rest to its other clients (default 0.5)")
    group.add_argument("--parallelism", type=_positive_int, default=default(8), metavar="N",
                       help="concurrent requests when listing and applying (default 8)")
    group.add_argument("--insecure-http", action="store_true", default=default(False),
                       help="allow plain http:// to a host that is not loopback")
    group.add_argument("--sandbox", action="store_true", default=default(False),
                       help="run against a local emulator backed by .reconciler/sandbox.db")
    group.add_argument("-v", "--verbose", action="count", default=default(0),
                       help="more detail: reasons and unmanaged conversations (-vv: every request)")
    group.add_argument("-q", "--quiet", action="store_true", default=default(False),
                       help="only warnings and errors on stderr (no progress or notes); "
                            "results still on stdout")
    group.add_argument("--no-color", action="store_true", default=default(False),
                       help="never colour the output (NO_COLOR is honoured too)")


CHECK_FORMATS = ("text", "json", "junit", "markdown", "html")


def _pass_rate(text: str) -> float:
    """An argparse type: a finite number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text[:40]!r}") from None
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, not {text[:40]!r}")
    return value


def _check_outputs(parser: argparse.ArgumentParser, *, example: str) -> None:
    """The answer checks' outputs of `check` and `test`: --format, --out and --write."""
    parser.add_argument("--format", choices=CHECK_FORMATS, default="text", help="output format")
    parser.add_argument("--out", metavar="FILE", help="write the result to FILE (default stdout)")
    parser.add_argument("--write", nargs=2, action="append", metavar=("FORMAT", "FILE"),
                        help="also write the result in FORMAT (one of --format's) to FILE "
                             "(repeatable): for CI, a summary, a JUnit report and an HTML page "
                             f"from one run, e.g. --write junit {example}")


def _files(parser: argparse.ArgumentParser) -> None:
    """The desired-state files: -f PATH (repeatable) and PATH… as positionals, alike (`plan
    conversations/` as `plan -f conversations/`); at least one is needed (`cli/main.py`)."""
    parser.add_argument("-f", "--file", dest="files", action="append", metavar="PATH",
                        help="desired-state YAML file or directory (repeatable)")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="more files or directories, as with -f")


def _plan_key_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--plan-key-file", metavar="FILE",
                        help=f"{what} (default $RECONCILER_PLAN_KEY; the key is never shown)")


def _guard_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-deletes", type=_count, metavar="N",
                        help="refuse a plan deleting more than N conversations in total")
    parser.add_argument("--allow-mass-delete", action="store_true",
                        help="allow deleting more than a project's max_delete_fraction "
                             f"(default {DEFAULT_MAX_DELETE_FRACTION:.0%}%) or more than "
                             "--max-deletes")
    parser.add_argument("--project", type=_positive_int, action="append", metavar="ID",
                        help="only these declared projects (repeatable)")


def _command(
    commands: argparse._SubParsersAction[_Parser], name: str, summary: str, example: str,
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name, help=summary, description=summary, epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _exit_codes() -> str:
    """The exit codes and their meanings, for the end of `reconciler --help`."""
    return "exit codes:\n" + "\n".join(
        textwrap.fill(meaning.replace("`", ""), width=79, initial_indent=f"  {code:<5}",
                      subsequent_indent=" " * 7)
        for code, meaning in EXIT_CODES.items())


def build_parser() -> argparse.ArgumentParser:
    """The whole command-line grammar; the command's name is parsed as `command`."""
    parser = _Parser(prog="reconciler", description="Conversations as code for CustomGPT.ai.",
                     epilog=_exit_codes(),
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    _add_global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = _command(commands, "validate",
                        "Check desired-state files against the schema and every rule, offline.",
                        "reconciler validate conversations/")
    _files(validate)

    plan = _command(commands, "plan",
                    "Show what apply would change, without changing anything.",
                    "reconciler plan conversations/ --out plan.json --format markdown")
    _files(plan)
    plan.add_argument("--out", metavar="FILE", help="also save the plan as JSON for apply --plan")
    _plan_key_option(plan, "sign the saved plan with the key in FILE (HMAC-SHA256)")
    plan.add_argument("--format", choices=FORMATS, default="text", help="output format")
    plan.add_argument("--detailed-exitcode", action="store_true",
                      help="exit 2 when there are changes (0: none, 1: error)")
    plan.add_argument("--max-sends", type=_count, metavar="N",
                      help="refuse a plan sending more than N prompts (each costs a query credit)")
    _guard_options(plan)

    apply = _command(commands, "apply",
                     "Make live conversations match the declared state.",
                     "reconciler apply --plan plan.json --auto-approve --report report.json")
    _files(apply)
    apply.add_argument("--plan", metavar="FILE", help="apply a plan saved by plan --out")
    _plan_key_option(apply, "apply --plan only a plan signed with the key in FILE")
    apply.add_argument("--auto-approve", action="store_true",
                       help="do not ask for confirmation (needed without a terminal)")
    apply.add_argument("--dry-run", action="store_true",
                       help="show exactly what would be done; change nothing")
    backups = apply.add_mutually_exclusive_group()
    backups.add_argument("--backup-dir", metavar="DIR",
                         help="where transcripts are saved before deletes "
                              "(default .reconciler/backups/<UTC time>)")
    backups.add_argument("--no-backup", action="store_true",
                         help="delete without saving transcripts first")
    apply.add_argument("--report", metavar="FILE", help="write a per-operation JSON report")
    apply.add_argument("--max-sends", type=_count, metavar="N",
                       help="refuse to send more than N prompts (each costs a query credit)")
    _guard_options(apply)

    show = _command(commands, "show", "Render a saved plan.",
                    "reconciler show plan.json --format markdown")
    show.add_argument("plan_file", metavar="FILE")
    show.add_argument("--format", choices=FORMATS, default="text", help="output format")

    export = _command(commands, "export",
                      "Write desired-state YAML of what is live, to adopt existing projects.",
                      "reconciler export --project 4242 --scope team -o conversations/support.yaml")
    export.add_argument("--project", type=_positive_int, action="append", required=True,
                        metavar="ID", help="project to export (repeatable)")
    export.add_argument("--scope", choices=[s.value for s in Scope], default="mine",
                        help="which live conversations to export (default mine)")
    export.add_argument("--pin", action="store_true", help="declare session ids too")
    export.add_argument("--with-messages", action="store_true",
                        help="declare each conversation's prompts as messages")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default stdout)")
    export.add_argument("--force", action="store_true",
                        help="replace FILE when it exists (without it, an existing file is "
                             "never overwritten)")

    restore = _command(commands, "restore",
                       "Recreate a deleted conversation from its transcript backup.",
                       "reconciler restore .reconciler/backups/<UTC time>/4242/<session>.json")
    restore.add_argument("backup_file", metavar="BACKUP_FILE")
    restore.add_argument("--resend-prompts", action="store_true",
                         help="also re-send its prompts in order (answers are regenerated)")
    restore.add_argument("--max-sends", type=_count, metavar="N",
                         help="refuse to re-send more than N prompts (each costs a query "
                              "credit)")

    check = _command(commands, "check",
                     "Check stored answers against the messages' expect: (sends nothing).",
                     "reconciler check conversations/ --format junit --out checks.xml")
    _files(check)
    _check_outputs(check, example="checks.xml")
    check.add_argument("--min-pass-rate", type=_pass_rate, metavar="F",
                       help="exit 0 when at least this share of checks (0 to 1) pass "
                            "(default: every check must pass)")
    check.add_argument("--project", type=_positive_int, action="append", metavar="ID",
                       help="only these declared projects (repeatable)")

    test = _command(commands, "test",
                    "Ask conversations with expect: again, in throwaway conversations, and "
                    "judge the new answers.",
                    "reconciler test -f conversations/ --repeat 3 --baseline checks.json "
                    "--format markdown")
    test.description = f"{test.description}\n\n" + textwrap.fill(
        "Sent: each declared conversation's messages in order, up to and "
        "including its last message with expect: (the ones before are its context), into a "
        "new conversation named 'reconciler-test <start> until <deadline> <run id> <k>/<N> "
        "<name>' (a name no desired-state file may declare), deleted when it is judged. Every "
        "run first deletes the throwaway conversations of the API key's user that a stopped "
        "run left behind, once they are an hour past their deadline.", width=78)
    _files(test)
    test.add_argument("--repeat", type=_repeat, default=1, metavar="N",
                      help="ask each conversation N times (1 to 100, default 1), each in its "
                           "own throwaway conversation")
    test.add_argument("--min-pass-rate", type=_pass_rate, metavar="F",
                      help="with --repeat: a check passes when it passed in at least this "
                           "share of its runs (0 to 1); without: exit 0 when at least this "
                           "share of checks pass (default: every one)")
    test.add_argument("--baseline", metavar="FILE",
                      help="a JSON report of check or test: show the checks whose status "
                           "flipped since it")
    _check_outputs(test, example="tests.xml")
    test.add_argument("--max-sends", type=_count, metavar="N",
                      help="refuse to send more than N prompts (each costs a query credit)")
    test.add_argument("--project", type=_positive_int, action="append", metavar="ID",
                      help="only these declared projects (repeatable)")

    from reconciler.emulator.cli import add_emulator_command

    add_emulator_command(commands)
    add_completion_command(commands)
    for name, sub in commands.choices.items():
        sub._optionals.title = f"{name} options"  # its own, shown before the global ones
        _add_global_options(sub, suppress=True)
    return parser
