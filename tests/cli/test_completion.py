"""Shell completion: `reconciler completion bash|zsh`, and the bash script driven in a real bash
the way bash itself calls a completion function (COMP_WORDS, COMP_CWORD, then COMPREPLY)."""

from __future__ import annotations

import contextlib
import io
import shlex
import subprocess
from pathlib import Path

import pytest

from reconciler import __version__
from reconciler.cli.main import main
from reconciler.cli.parser import build_parser


def reconciler(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command in-process, as the installed script would (argparse's own messages,
    --version and usage errors, go to sys.stdout and sys.stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args), env={}, stdout=out, stderr=err)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    done = reconciler("completion", "bash")
    assert done.returncode == 0, done.stderr
    script = tmp_path_factory.mktemp("completion") / "reconciler.bash"
    script.write_text(done.stdout, encoding="utf-8")
    return script


def complete(script: Path, line: str, cwd: Path | None = None) -> list[str]:
    """What bash offers for `line` (the cursor at its end), via the function registered for
    `reconciler` by `complete -F`."""
    words = line.split(" ")
    program = f"""
source {shlex.quote(str(script))}
function=$(complete -p reconciler | sed -E 's/.*-F ([^ ]+).*/\\1/')
COMP_WORDS=({" ".join(shlex.quote(w) for w in words)})
COMP_CWORD={len(words) - 1}
COMP_LINE={shlex.quote(line)}
COMP_POINT=${{#COMP_LINE}}
"$function" reconciler {shlex.quote(words[-1])} {shlex.quote(words[-2])}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "--noprofile", "--norc", "-c", program], cwd=cwd,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return sorted(word.strip() for word in done.stdout.splitlines() if word.strip())


def test_bash_completes_a_subcommand(bash_script: Path) -> None:
    assert complete(bash_script, "reconciler pl") == ["plan"]
    offered = complete(bash_script, "reconciler ")
    assert {"validate", "plan", "apply", "show", "export", "restore", "emulator",
            "completion"} <= set(offered)


def test_bash_completes_a_flag_of_the_subcommand(bash_script: Path) -> None:
    assert complete(bash_script, "reconciler plan --detailed") == ["--detailed-exitcode"]
    assert complete(bash_script, "reconciler apply --auto") == ["--auto-approve"]
    # a flag of another command is not offered
    assert complete(bash_script, "reconciler validate --auto") == []


def test_bash_completes_choices_and_file_names(bash_script: Path, tmp_path: Path) -> None:
    assert complete(bash_script, "reconciler plan --format m") == ["markdown"]
    (tmp_path / "support.yaml").write_text("version: 1\nprojects: []\n")
    (tmp_path / "sales.yaml").write_text("version: 1\nprojects: []\n")
    assert complete(bash_script, "reconciler plan -f su", cwd=tmp_path) == ["support.yaml"]


def test_zsh_script_is_generated_from_the_parser() -> None:
    done = reconciler("completion", "zsh")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("#compdef reconciler")
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name in subparsers.choices:  # type: ignore[union-attr]
        assert f"{name}:" in done.stdout
    assert "--detailed-exitcode" in done.stdout


def test_completion_refuses_an_unknown_shell() -> None:
    done = reconciler("completion", "tcsh")
    assert done.returncode == 1
    assert "invalid choice" in done.stderr
    assert "Traceback" not in done.stderr


def test_version_is_the_package_version() -> None:
    from importlib.metadata import version

    done = reconciler("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"reconciler {__version__}"
    assert version("customgpt-reconciler") == __version__
