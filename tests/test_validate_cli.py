"""`reconciler validate`: every malformed corpus file fails with located errors and exit 1."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli import main

CORPUS = Path(__file__).parent / "corpus" / "invalid"
EXAMPLES = Path(__file__).parent.parent / "examples"
SECRET = "sk-corpus-secret-5f2e"
CORPUS_ENV = {"CUSTOMGPT_API_KEY": SECRET, "CORPUS_TOKEN_COPY": SECRET}
EXPECT = re.compile(rb"^# expect: (\d+):(\d+): (.+)$")


def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["validate", *argv], env=env or {}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def expectations(path: Path) -> list[tuple[int, int, str]]:
    found = []
    for line in path.read_bytes().splitlines():
        match = EXPECT.match(line)
        if match is None:
            break
        found.append((int(match[1]), int(match[2]), match[3].decode()))
    return found


CORPUS_FILES = sorted(CORPUS.glob("*.yaml"))


def test_corpus_is_large_enough_and_every_file_states_its_expectations() -> None:
    assert len(CORPUS_FILES) >= 40
    assert all(expectations(path) for path in CORPUS_FILES)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.name for p in CORPUS_FILES])
def test_invalid_file_reports_each_expected_problem_at_its_place(path: Path) -> None:
    code, out, err = run("-f", str(path), env=CORPUS_ENV)

    assert code == 1
    assert out == ""
    assert "Traceback" not in err
    assert SECRET not in err
    errors = err.splitlines()
    expected = expectations(path)
    assert len(errors) == len(expected), err
    for (line, column, message), reported in zip(expected, errors, strict=True):
        assert reported.startswith(f"error: {path}:{line}:{column}: "), err
        assert message in reported, err


def test_all_files_problems_are_reported_in_one_run() -> None:
    files = [CORPUS / "wrong-version.yaml", CORPUS / "duplicate-name.yaml", CORPUS / "alias.yaml"]
    code, _, err = run(*(arg for f in files for arg in ("-f", str(f))))

    assert code == 1
    reported = [line.removeprefix("error: ").split(":")[0] for line in err.splitlines()]
    assert reported == [str(f) for f in files]


def test_examples_directory_is_valid() -> None:
    code, out, err = run("-f", str(EXAMPLES))

    assert (code, err) == (0, "")
    assert out == "OK: 3 projects, 8 conversations\n"


@pytest.mark.parametrize("env_file", ["staging.env", "production.env"])
def test_per_environment_example_is_valid_with_its_env_file(env_file: str) -> None:
    folder = EXAMPLES / "per-environment"
    env = dict(
        line.split("=", 1) for line in (folder / env_file).read_text().splitlines() if "=" in line
    )
    code, out, err = run("-f", str(folder), env=env)

    assert (code, err) == (0, "")
    assert out == "OK: 1 projects, 2 conversations\n"


def test_per_environment_example_without_its_variables_names_the_missing_one() -> None:
    code, _, err = run("-f", str(EXAMPLES / "per-environment"))

    assert code == 1
    assert "SUPPORT_PROJECT_ID is not set" in err
    assert len(err.splitlines()) == 1


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as stream:
        stream.truncate(100 * 1024 * 1024)  # sparse: nothing is written or read

    code, _, err = run("-f", str(huge))

    assert code == 1
    assert f"error: {huge}: file is 104857600 bytes, over the 10 MiB limit" in err


@pytest.mark.parametrize("opening", ["[", "{a: ", "- "], ids=["flow-list", "flow-map", "block"])
def test_deep_nesting_bomb_is_refused(tmp_path: Path, opening: str) -> None:
    bomb = tmp_path / "bomb.yaml"
    if opening == "- ":
        bomb.write_text("".join("  " * i + "-\n" for i in range(2000)))
    else:
        bomb.write_text("version: 1\nprojects: " + opening * 50_000 + "\n")

    code, _, err = run("-f", str(bomb))

    assert code == 1
    assert "nesting is deeper than 64 levels" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("missing.yaml", "no such file or directory"),
        ("empty-dir", "directory has no *.yaml or *.yml file"),
        ("pipe.yaml", "not a regular file or directory"),
    ],
    ids=["missing-path", "directory-without-yaml", "fifo"],
)
def test_unusable_path_is_a_located_error(tmp_path: Path, argument: str, message: str) -> None:
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "empty-dir" / "notes.txt").write_text("not yaml")
    os.mkfifo(tmp_path / "pipe.yaml")
    target = tmp_path / argument

    code, _, err = run("-f", str(target))

    assert code == 1
    assert err == f"error: {target}: {message}\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_is_a_located_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked.yaml"
    locked.write_text("version: 1\nprojects: []\n")
    locked.chmod(0)

    code, _, err = run("-f", str(locked))

    assert code == 1
    assert f"error: {locked}: cannot read file" in err


def test_validate_as_a_real_process() -> None:
    bad = CORPUS / "duplicate-name.yaml"
    env = {"PATH": os.environ.get("PATH", ""), "SUPPORT_PROJECT_ID": "3001"}
    good = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "-f", str(EXAMPLES / "quickstart.yaml")],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    failed = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "-f", str(bad)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )

    assert (good.returncode, good.stderr) == (0, "")
    assert good.stdout == "OK: 1 projects, 3 conversations\n"
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr.startswith(f"error: {bad}:8:15: conversation 'A' is declared twice")
    assert "Traceback" not in failed.stderr
