"""`reconciler validate`: every malformed corpus file fails with located errors and exit 1."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli.main import main
from tests import ROOT

CORPUS = ROOT / "tests" / "corpus" / "invalid"
EXAMPLES = ROOT / "examples"
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


def test_a_project_that_prunes_but_owns_nothing_is_valid_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("version: 1\nprojects:\n  - id: 1\n    prune: true\n"
                    "  - id: 2\n    prune: true\n    owns: [\"QA *\"]\n", encoding="utf-8")
    code, out, err = run("-f", str(path))
    assert (code, out) == (0, "OK: 2 projects, 0 conversations\n")
    assert err == (f"{path}:4:12: warning: project 1 prunes but owns nothing: prune deletes no "
                   "undeclared conversation (only extra copies of a declared name); list the "
                   'names this repository owns in `owns`, such as ["QA *"], or ["*"] when '
                   "nothing else uses this API key\n")


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
        ("file.yaml/inside.yaml", "not a directory"),
        ("bad\0name.yaml", "not a valid path"),
    ],
    ids=["missing-path", "directory-without-yaml", "fifo", "parent-is-a-file", "nul-byte"],
)
def test_unusable_path_is_a_located_error(tmp_path: Path, argument: str, message: str) -> None:
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "empty-dir" / "notes.txt").write_text("not yaml")
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "file.yaml").write_text("version: 1\nprojects: []\n")
    target = f"{tmp_path}/{argument}"

    code, _, err = run("-f", target)

    assert code == 1
    shown = target.replace("\0", "\\u0000")  # control characters are escaped on output
    assert err == f"error: {shown}: {message}\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_is_a_located_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked.yaml"
    locked.write_text("version: 1\nprojects: []\n")
    locked.chmod(0)

    code, _, err = run("-f", str(locked))

    assert code == 1
    assert f"error: {locked}: cannot read file: permission denied" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can list any directory")
def test_a_file_in_an_unreadable_directory_says_permission_denied(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "c.yaml").write_text("version: 1\nprojects: []\n")
    locked.chmod(0)
    try:
        code, _, err = run("-f", str(locked / "c.yaml"))
    finally:
        locked.chmod(0o700)
    assert code == 1
    assert err == f"error: {locked / 'c.yaml'}: permission denied\n"


def test_what_a_directory_cannot_read_is_reported_not_skipped(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text("version: 1\nprojects: []\n")
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (tmp_path / "folder.yml").mkdir()
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / ".hidden.yaml").symlink_to(tmp_path / "nowhere.yaml")

    code, out, err = run("-f", str(tmp_path))

    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        f"error: {tmp_path / 'dangling.yaml'}: cannot read dangling.yaml: a symbolic link "
        "to nothing",
        f"error: {tmp_path / 'folder.yml'}: folder.yml is a directory; only *.yaml and *.yml "
        "files are read from a directory (not recursively)",
        f"error: {tmp_path / 'pipe.yaml'}: pipe.yaml is not a regular file; only *.yaml and "
        "*.yml files are read from a directory (not recursively)",
    ]


@pytest.mark.parametrize("quoted", [True, False], ids=["string", "integer"])
@pytest.mark.parametrize("digits", [20, 5000], ids=["20-digits", "5000-digits"])
def test_a_project_id_beyond_64_bits_is_a_short_located_error(
    tmp_path: Path, quoted: bool, digits: int
) -> None:
    number = "9" * digits
    file = tmp_path / "big.yaml"
    file.write_text(f"version: 1\nprojects:\n  - id: {repr(number) if quoted else number}\n")

    code, _, err = run("-f", str(file))

    assert code == 1
    assert err.startswith(f"error: {file}:3:9: ")
    assert "9223372036854775807" in err or "is not a valid int" in err
    assert len(err) < 300


def test_a_nested_variable_reference_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "nested.yaml"
    file.write_text("version: 1\nprojects:\n  - id: 1\n    conversations:\n"
                    "      - name: \"${A:-${B}}\"\n")

    code, _, err = run("-f", str(file), env={"B": "from B"})

    assert code == 1
    assert err == (f"error: {file}:5:15: the default of ${{A:-...}} holds '${{': a default is "
                   "literal text; nested references are not supported\n")


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
