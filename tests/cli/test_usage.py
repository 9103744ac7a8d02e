"""The command line as a new user meets it: help in one voice, a command's own options before
the global ones, a suggestion for a mistyped command, option or choice (never repeating a value
that could be the key), and desired-state directories given as a plain argument."""

from __future__ import annotations

import argparse
import contextlib
import io
import re

import pytest

from reconciler.cli.main import main
from reconciler.cli.parser import build_parser
from tests.workspace import PROJECT, Workspace


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def one_line_helps() -> dict[str, str]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: str(choice.help) for choice in action._choices_actions}


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args), env={}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("command", sorted(one_line_helps()))
def test_every_command_is_summed_up_in_one_voice(command: str) -> None:
    """As `reconciler --help` lists them: a sentence starting with a capital verb, ending
    with a full stop."""
    summary = one_line_helps()[command]
    assert re.fullmatch(r"[A-Z][a-z]+ [^\n]+\.", summary), summary
    assert not summary.split()[0].endswith("ing"), summary


def help_sections(help_text: str) -> list[str]:
    """The titles of a help text's sections, in order (lines like `server:`)."""
    return [line[:-1] for line in help_text.splitlines()
            if re.fullmatch(r"[a-z][\w ]*:", line)]


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_a_commands_help_leads_with_its_own_options(command: str) -> None:
    parser = subcommands()[command]
    sections = help_sections(parser.format_help())
    own = [s for s in sections if s not in ("positional arguments", "example", "examples")]
    assert own[0] == f"{command} options"
    assert own[-1] == "global options"  # the options every command takes, last
    own_options = next(g for g in parser._action_groups if g.title == f"{command} options")
    globals_ = next(g for g in parser._action_groups if g.title == "global options")
    assert "--base-url" in {o for a in globals_._group_actions for o in a.option_strings}
    assert "--base-url" not in {o for a in own_options._group_actions for o in a.option_strings}


@pytest.mark.parametrize(("argv", "meant"), [
    (["plna", "-f", "a.yaml"], "did you mean 'plan'?"),
    (["valdate", "a.yaml"], "did you mean 'validate'?"),
    (["apply", "-f", "a.yaml", "--dryrun"], "did you mean --dry-run?"),
    (["apply", "-f", "a.yaml", "--auto-aprove", "--projct", "3"],
     "did you mean --auto-approve, --project?"),
    (["plan", "-f", "a.yaml", "--format", "mardown"], "did you mean 'markdown'?"),
    (["export", "--project", "1", "--scope", "teams"], "did you mean 'team'?"),
    (["plan", "-f", "a.yaml", "--timout", "5"], "did you mean --timeout?"),
], ids=["command", "command-2", "option", "two-options", "format", "scope", "global-option"])
def test_a_mistyped_command_option_or_choice_gets_a_suggestion(argv: list[str],
                                                                meant: str) -> None:
    code, _, err = run(*argv)
    assert code == 1
    assert err.rstrip().endswith(meant), err


def test_an_option_of_another_command_is_not_suggested() -> None:
    """`plan` has no --dry-run (apply has): nothing close among plan's own options."""
    code, _, err = run("plan", "-f", "a.yaml", "--dry-run")
    assert code == 1
    assert "unrecognized arguments: --dry-run" in err and "did you mean" not in err


def test_a_suggestion_never_repeats_what_was_typed_in_a_value() -> None:
    secret = "sk-live-0123456789abcdef"
    code, _, err = run("plan", "-f", "a.yaml", "--format", secret)
    assert code == 1
    assert secret not in err
    code, _, err = run("plan", "-f", "a.yaml", f"--timout={secret}")
    assert code == 1
    assert secret not in err and "did you mean --timeout?" in err


def test_plan_apply_and_check_take_a_directory_as_validate_does(ws: Workspace) -> None:
    directory = ws.path / "conversations"
    directory.mkdir()
    (directory / "demo.yaml").write_text(
        f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n      - name: FAQ\n")
    assert ws.run("validate", "conversations").code == 0
    planned = ws.run("plan", "conversations")
    assert planned.code == 0, planned.err
    assert "+ create 'FAQ'" in planned.out
    applied = ws.run("apply", "conversations", "--auto-approve", "--no-backup")
    assert applied.code == 0, applied.err
    assert ws.names() == ["FAQ"]
    checked = ws.run("check", "conversations")
    assert checked.code == 0, checked.err


@pytest.mark.parametrize("command", ["plan", "check"])
def test_a_command_without_any_file_says_how_to_give_one(ws: Workspace, command: str) -> None:
    result = ws.run(command)
    assert result.code == 1
    assert (f"error: {command} needs at least one desired-state file or directory (-f PATH or "
            "PATH)") in result.err
