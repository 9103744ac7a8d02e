"""The project's own pipelines (.github/workflows/, .ci/run, noxfile.py): they lint clean with
the linters the examples pass, and they test the Python versions the package says it supports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def supported_pythons() -> list[str]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return re.findall(r'"Programming Language :: Python :: (3\.\d+)"', text)


def linter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_the_classifiers_start_at_the_required_python() -> None:
    versions = supported_pythons()
    assert versions[0] == "3.11" and versions == sorted(versions, key=lambda v: int(v[2:]))
    assert 'requires-python = ">=3.11"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_ci_tests_every_supported_python() -> None:
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
    assert ci["jobs"]["test"]["strategy"]["matrix"]["python"] == supported_pythons()


def test_release_publishes_with_trusted_publishing_only() -> None:
    text = (ROOT / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")
    release = yaml.safe_load(text)
    publish = release["jobs"]["publish"]
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    assert "password" not in text and "PYPI_TOKEN" not in text.upper()
    steps = [step.get("run", "") for step in release["jobs"]["build"]["steps"]]
    assert any("twine check" in step for step in steps)


def test_local_ci_runs_the_newest_python_too() -> None:
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "Programming Language :: Python ::" in text  # the version comes from the classifiers
    assert '-m "not slow"' in text


@pytest.mark.parametrize("persona", ["regular", "auditor"])
def test_zizmor_finds_nothing_in_the_projects_workflows(persona: str) -> None:
    done = linter("zizmor", "--offline", "--no-progress", "--format", "plain",
                  "--persona", persona, *(str(p.relative_to(ROOT)) for p in WORKFLOWS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout


def test_the_projects_workflows_match_their_schema() -> None:
    done = linter("check-jsonschema", "--builtin-schema", "vendor.github-workflows",
                  *(str(p.relative_to(ROOT)) for p in WORKFLOWS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok -- validation done" in done.stdout
