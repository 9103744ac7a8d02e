"""The package as a user gets it: `python -m build` makes an sdist and a wheel (the wheel built
from the sdist, as build does), `twine check` passes on both, and the wheel, installed from the
file alone into a fresh virtual environment, runs the sandbox quickstart.

Kept lean for the test command: the build runs without isolation, with this environment's
setuptools (no download), and the fresh environment has no pip and gets the wheel alone
(`--no-deps --no-index`); its dependencies come from this environment's site-packages, added
after its own, so that `reconciler` itself can only come from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import __version__

ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv*", "*.egg-info", "build", "dist", "__pycache__",
                                    ".*_cache", "test-artifacts", ".reconciler", "mutants", "site")


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """sdist and wheel of a copy of the source tree (the tree itself stays untouched)."""
    base = tmp_path_factory.mktemp("package")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    built = run(sys.executable, "-m", "build", "--no-isolation", "--outdir", base / "dist",
                source, cwd=base)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    yield base / "dist"


def one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_build_makes_an_sdist_and_a_wheel_that_twine_accepts(dist: Path) -> None:
    wheel = one(dist, f"customgpt_reconciler-{__version__}-py3-none-any.whl")
    sdist = one(dist, f"customgpt_reconciler-{__version__}.tar.gz")
    checked = run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist, cwd=dist)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2


def test_wheel_and_sdist_carry_every_schema_and_the_changelog(dist: Path) -> None:
    schemas = sorted(p.relative_to(ROOT / "schemas").as_posix()
                     for p in (ROOT / "schemas").rglob("*.json"))
    assert "conversations.schema.json" in schemas and "api/envelope.schema.json" in schemas
    wheel = zipfile.ZipFile(one(dist, "*.whl")).namelist()
    assert sorted(n.removeprefix("reconciler/schemas/") for n in wheel
                  if n.startswith("reconciler/schemas/") and n.endswith(".json")) == schemas
    assert "reconciler/py.typed" in wheel
    assert "reconciler/emulator/pages.py" in wheel
    assert not [n for n in wheel if n.startswith("tests/")]
    with tarfile.open(one(dist, "*.tar.gz")) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {"CHANGELOG.md", "README.md", "pyproject.toml"} <= names
    assert {f"schemas/{s}" for s in schemas} <= names
    assert not [n for n in names if n.startswith("tests/")]


@pytest.fixture(scope="module")
def fresh(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the wheel installed from its file alone; returns its
    bin directory."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=venv.parent)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
                    "--no-deps", "--no-index", one(dist, "*.whl"), cwd=venv.parent)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # The dependencies: this environment's site-packages, after the fresh one's own. A path
    # from a .pth file is not a site directory, so the editable install's finder there never
    # runs, and `import reconciler` finds the wheel's copy.
    own = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
              cwd=venv.parent).stdout.strip()
    Path(own, "dependencies-from-the-test-environment.pth").write_text(
        sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    return venv / "bin"


# What `pip check` says for one distribution: every requirement in the wheel's metadata (no
# extra) is installed in a version it allows.
CHECK_REQUIREMENTS = """
from importlib.metadata import requires, version
from packaging.requirements import Requirement
for line in requires("customgpt-reconciler"):
    requirement = Requirement(line)
    if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
        assert requirement.specifier.contains(version(requirement.name)), requirement
        print(requirement.name)
"""


def isolated_env(tmp: Path) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(tmp), "LANG": "C.UTF-8",
            "NO_COLOR": "1"}


def test_the_installed_wheel_is_the_one_that_runs(fresh: Path, tmp_path: Path) -> None:
    where = run(fresh / "python", "-c", "import reconciler; print(reconciler.__file__)",
                cwd=tmp_path, env=isolated_env(tmp_path))
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(fresh.parent)
    version = run(fresh / "reconciler", "--version", cwd=tmp_path, env=isolated_env(tmp_path))
    assert version.stdout.strip() == f"reconciler {__version__}"
    satisfied = run(fresh / "python", "-c", CHECK_REQUIREMENTS, cwd=tmp_path,
                    env=isolated_env(tmp_path))
    assert satisfied.returncode == 0, satisfied.stdout + satisfied.stderr
    assert "shtab" in satisfied.stdout  # every requirement of the wheel's metadata was checked


def test_the_installed_wheel_runs_the_sandbox_quickstart(fresh: Path, tmp_path: Path) -> None:
    shutil.copy(ROOT / "examples" / "quickstart.yaml", tmp_path / "quickstart.yaml")
    env = isolated_env(tmp_path)
    reconciler = fresh / "reconciler"
    valid = run(reconciler, "validate", "-f", "quickstart.yaml", cwd=tmp_path, env=env)
    assert valid.returncode == 0, valid.stderr
    assert "OK: 1 projects, 3 conversations" in valid.stdout
    applied = run(reconciler, "apply", "--sandbox", "--auto-approve", "-f", "quickstart.yaml",
                  cwd=tmp_path, env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Traceback" not in applied.stderr
    again = run(reconciler, "plan", "--sandbox", "-f", "quickstart.yaml", "--detailed-exitcode",
                cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes." in again.stdout
    completion = run(reconciler, "completion", "bash", cwd=tmp_path, env=env)
    assert completion.returncode == 0 and "plan" in completion.stdout
