"""From the command line to a command: every flag a user gives reaches the command it is
given to (a flag parsed and then dropped would be silently ignored), and a global option does
the same before or after the command's name."""

from __future__ import annotations

import argparse

import pytest

from reconciler.cli.main import Parameters, parameters
from reconciler.cli.parser import build_parser

P = ["plan", "-f", "a.yaml"]
A = ["apply", "-f", "a.yaml"]
AP = ["apply", "--plan", "p.json"]
E = ["export", "--project", "1"]
R = ["restore", "b.json"]
S = ["show", "p.json"]
C = ["check", "-f", "a.yaml"]

# For each command, each of its own options (by dest): a command line without it and one
# with it (or with another value), which must give the command different parameters.
COMMAND_FLAGS: dict[str, dict[str, tuple[list[str], list[str]]]] = {
    "validate": {
        "files": (["validate", "x.yaml"], ["validate", "x.yaml", "-f", "y.yaml"]),
        "paths": (["validate", "-f", "x.yaml"], ["validate", "-f", "x.yaml", "y.yaml"]),
    },
    "plan": {
        "files": (P, ["plan", "-f", "b.yaml"]),
        "paths": (P, [*P, "b.yaml"]),
        "out": (P, [*P, "--out", "p.json"]),
        "plan_key_file": ([*P, "--out", "p.json"], [*P, "--out", "p.json",
                                                    "--plan-key-file", "k"]),
        "format": (P, [*P, "--format", "markdown"]),
        "detailed_exitcode": (P, [*P, "--detailed-exitcode"]),
        "max_sends": (P, [*P, "--max-sends", "0"]),
        "max_deletes": (P, [*P, "--max-deletes", "0"]),
        "allow_mass_delete": (P, [*P, "--allow-mass-delete"]),
        "project": (P, [*P, "--project", "7"]),
    },
    "apply": {
        "files": (A, ["apply", "-f", "b.yaml"]),
        "paths": (A, [*A, "b.yaml"]),
        "plan": (AP, ["apply", "--plan", "q.json"]),
        "plan_key_file": (AP, [*AP, "--plan-key-file", "k"]),
        "auto_approve": (A, [*A, "--auto-approve"]),
        "dry_run": (A, [*A, "--dry-run"]),
        "backup_dir": (A, [*A, "--backup-dir", "d"]),
        "no_backup": (A, [*A, "--no-backup"]),
        "report": (A, [*A, "--report", "r.json"]),
        "max_sends": (A, [*A, "--max-sends", "0"]),
        "max_deletes": (A, [*A, "--max-deletes", "0"]),
        "allow_mass_delete": (A, [*A, "--allow-mass-delete"]),
        "project": (A, [*A, "--project", "7"]),
    },
    "show": {
        "plan_file": (S, ["show", "q.json"]),
        "format": (S, [*S, "--format", "json"]),
    },
    "export": {
        "project": (E, ["export", "--project", "2"]),
        "scope": (E, [*E, "--scope", "team"]),
        "pin": (E, [*E, "--pin"]),
        "with_messages": (E, [*E, "--with-messages"]),
        "output": (E, [*E, "-o", "out.yaml"]),
        "force": ([*E, "-o", "out.yaml"], [*E, "-o", "out.yaml", "--force"]),
    },
    "restore": {
        "backup_file": (R, ["restore", "c.json"]),
        "resend_prompts": (R, [*R, "--resend-prompts"]),
        "max_sends": (R, [*R, "--max-sends", "0"]),
    },
    "check": {
        "files": (C, ["check", "-f", "b.yaml"]),
        "paths": (C, [*C, "b.yaml"]),
        "format": (C, [*C, "--format", "junit"]),
        "out": (C, [*C, "--out", "c.xml"]),
        "write": (C, [*C, "--write", "junit", "c.xml"]),
        "min_pass_rate": (C, [*C, "--min-pass-rate", "0.5"]),
        "project": (C, [*C, "--project", "7"]),
    },
}

# The global options that say how to reach the API, with a value other than the default.
CONNECTION_FLAGS = {
    "base_url": ["--base-url", "https://example.test"],
    "api_key_file": ["--api-key-file", "key"],
    "timeout": ["--timeout", "5"],
    "send_timeout": ["--send-timeout", "60"],
    "max_rate": ["--max-rate", "30"],
    "rate_share": ["--rate-share", "0.25"],
    "parallelism": ["--parallelism", "3"],
    "insecure_http": ["--insecure-http"],
    "sandbox": ["--sandbox"],
}
CONNECTED = {"plan": P, "apply": A, "export": E, "restore": R, "check": C}
CONSOLE_FLAGS = {"quiet", "verbose", "no_color"}  # they set the Console (tests/cli, -q, -v)


@pytest.mark.parametrize("command", ["validate", "plan", "apply", "check"])
def test_a_directory_given_as_a_positional_is_read_as_with_f(command: str) -> None:
    """`plan conversations/` as `validate conversations/`: the same parameters as -f."""
    assert received([command, "conversations/"]) == received([command, "-f", "conversations/"])
    assert (received([command, "a.yaml", "-f", "b.yaml"])
            == received([command, "-f", "b.yaml", "-f", "a.yaml"]))


def received(argv: list[str]) -> Parameters:
    return parameters(build_parser().parse_args(argv))


def options_of(command: str) -> set[str]:
    """The dests of every argument `command` accepts, as the parser defines them."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {action.dest for action in commands.choices[command]._actions
            if action.dest != "help"}


@pytest.mark.parametrize("command", sorted(COMMAND_FLAGS))
def test_every_option_of_every_command_is_in_these_tables(command: str) -> None:
    listed = set(COMMAND_FLAGS[command]) | set(CONNECTION_FLAGS) | CONSOLE_FLAGS
    assert options_of(command) - listed == set()


@pytest.mark.parametrize(("command", "dest"), [
    (command, dest) for command, flags in COMMAND_FLAGS.items() for dest in flags])
def test_each_option_reaches_its_command(command: str, dest: str) -> None:
    without, given = COMMAND_FLAGS[command][dest]
    assert received(without) != received(given)


@pytest.mark.parametrize(("command", "dest"), [
    (command, dest) for command in CONNECTED for dest in CONNECTION_FLAGS])
def test_each_global_option_reaches_the_connection_before_or_after_the_command(
    command: str, dest: str
) -> None:
    base, flag = CONNECTED[command], CONNECTION_FLAGS[dest]
    after, before = received([*base, *flag]), received([*flag, *base])
    assert after == before
    assert after.connection != received(base).connection  # type: ignore[union-attr]
