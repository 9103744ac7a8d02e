"""Mutation scores of the decision-making modules, on demand (it takes minutes).

    .venv/bin/python -m tests.mutation                    # every module of the table
    .venv/bin/python -m tests.mutation match retry        # some of them
    .venv/bin/python -m tests.mutation --jobs 2 build  # two mutants tested at a time

Each module is mutated alone, in a fresh work directory under `mutants/<module>/`, and its
mutants are tested with its own fast unit tests only. mutmut's shared settings are in
pyproject.toml's `[tool.mutmut]`; this command adds the module and its test files. A survivor
listed in tests/mutation/equivalent.toml (keyed by function and changed line, with the reason it
cannot change behaviour) is left out of the score. Exits 1 when a module scores under 90 %.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.mutation import MINIMUM_SCORE, TARGETS, Target

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "mutants"
EQUIVALENTS = Path(__file__).with_name("equivalent.toml")
DETECTED = {"killed", "timeout", "caught by type check"}


@dataclass
class Survivor:
    """A mutant no test killed."""

    name: str  # mutmut's name, valid for `mutmut show` in the module's work directory
    status: str
    description: str  # stable across runs: function and changed line


@dataclass
class ModuleResult:
    """What a mutation run of one module found."""

    module: str
    statuses: Counter[str] = field(default_factory=Counter)
    survivors: list[Survivor] = field(default_factory=list)
    equivalent: list[Survivor] = field(default_factory=list)
    stale_equivalents: list[str] = field(default_factory=list)

    @property
    def mutants(self) -> int:
        return sum(self.statuses.values())

    @property
    def killed(self) -> int:
        return sum(n for status, n in self.statuses.items() if status in DETECTED)

    @property
    def score(self) -> float:
        counted = self.mutants - len(self.equivalent)
        return self.killed / counted if counted else 1.0


def main() -> int:
    """Parse the options, run each module, print the table; 1 if a module is under 90 %."""
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"modules to mutate (default: all of {', '.join(TARGETS)})")
    parser.add_argument("--jobs", type=int, default=1,
                        help="mutants tested at a time (mutmut --max-children; default 1)")
    args = parser.parse_args()
    unknown = [m for m in args.modules if m not in TARGETS]
    if unknown or args.jobs < 1:
        parser.error(f"unknown module(s): {', '.join(unknown)}; known: {', '.join(TARGETS)}"
                     if unknown else "--jobs must be at least 1")
    equivalents = _read_equivalents()
    results = []
    for module in args.modules or list(TARGETS):
        result = run_module(module, TARGETS[module], jobs=args.jobs,
                            equivalents=equivalents.get(module, {}))
        _print_module(result)
        results.append(result)
    _print_table(results)
    return 0 if all(r.score >= MINIMUM_SCORE for r in results) else 1


def run_module(module: str, target: Target, *, jobs: int,
               equivalents: dict[str, str]) -> ModuleResult:
    """Mutate `target` in a fresh work directory and test each mutant with its tests."""
    workdir = _prepare(module, target)
    log = workdir / "mutmut.log"
    print(f"== {module}: mutating {target.source}, tests {' '.join(target.tests)} "
          f"(log: {log.relative_to(ROOT)})", flush=True)
    _mutmut(workdir, log, "run", "--max-children", str(jobs), target.mutant_glob)
    result = ModuleResult(module)
    listing = _mutmut(workdir, log, "results", "--all", "true")
    prefix = target.mutant_glob.removesuffix("*")
    for line in listing.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name.startswith(prefix):
            continue
        result.statuses[status] += 1
        if status not in DETECTED:
            survivor = Survivor(name, status, _describe(workdir, log, name))
            known = survivor.description in equivalents
            (result.equivalent if known else result.survivors).append(survivor)
    seen = {s.description for s in result.equivalent}
    result.stale_equivalents = sorted(set(equivalents) - seen)
    return result


def _prepare(module: str, target: Target) -> Path:
    """A fresh work directory: the package and tests linked in, and a pyproject.toml whose
    `[tool.mutmut]` is the repository's plus this module and its tests."""
    workdir = WORK / module
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    for name in ("reconciler", "tests", "schemas"):
        (workdir / name).symlink_to(ROOT / name, target_is_directory=True)
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    shared = tomllib.loads(text).get("tool", {}).get("mutmut", {})
    settings = {**shared, "only_mutate": [target.source],
                "pytest_add_cli_args_test_selection": list(target.tests)}
    lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    kept = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)
    (workdir / "pyproject.toml").write_text(
        kept + "\n[tool.mutmut]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return workdir


def _mutmut(workdir: Path, log: Path, *args: str) -> str:
    """Run `mutmut ARGS` in `workdir`; its output goes to `log` and is returned."""
    done = subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=workdir,
                          capture_output=True, text=True, check=False)
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ mutmut {' '.join(args)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise SystemExit(f"mutmut {args[0]} failed (exit {done.returncode}) in {workdir}:\n"
                         f"{tail}\nFull output: {log}")
    return done.stdout


GENERIC = {"continue", "break", "pass", "return", "return None", "return []", 'return ""'}


def _describe(workdir: Path, log: Path, name: str) -> str:
    """`function: old line -> new line`, from `mutmut show`: a key that survives renumbering.
    A statement as plain as `continue` gets the line before it: `(after if x:)`."""
    lines = _mutmut(workdir, log, "show", name).splitlines()
    removed = [line[1:].strip() for line in lines
               if line.startswith("-") and not line.startswith("---")]
    added = [line[1:].strip() for line in lines
             if line.startswith("+") and not line.startswith("+++")]
    key = f"{_function(name)}: {' / '.join(removed)} -> {' / '.join(added)}"
    if len(removed) == 1 and removed[0] in GENERIC:
        first = next(i for i, line in enumerate(lines) if line.startswith("-")
                     and not line.startswith("---"))
        before = [line.strip() for line in lines[:first] if line.startswith(" ")]
        key += f" (after {before[-1]})" if before else ""
    return key


def _function(name: str) -> str:
    """`_match_names` or `RetryPolicy.backoff` from a mutmut name."""
    mangled = name.partition("__mutmut_")[0].rpartition(".")[2]
    if "ǁ" in mangled:
        _, cls, method = mangled.split("ǁ")
        return f"{cls}.{method}"
    return mangled.removeprefix("x_")


def _read_equivalents() -> dict[str, dict[str, str]]:
    """module -> {description: why it cannot change behaviour}."""
    data = tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8"))
    return {module: dict(entries) for module, entries in data.items()}


def _print_module(result: ModuleResult) -> None:
    for survivor in result.survivors:
        print(f"  {survivor.status}: {survivor.description}  [{survivor.name}]")
    for description in result.stale_equivalents:
        print(f"  listed as equivalent but not among the survivors: {description}")
    print(f"  {result.mutants} mutants, {result.killed} killed, {len(result.equivalent)} "
          f"equivalent, {len(result.survivors)} surviving: {result.score:.1%}", flush=True)


def _print_table(results: list[ModuleResult]) -> None:
    print()
    print(f"{'module':<16}{'mutants':>9}{'killed':>8}{'equiv.':>8}{'survived':>10}{'score':>8}")
    for r in results:
        flag = "" if r.score >= MINIMUM_SCORE else f"  < {MINIMUM_SCORE:.0%}"
        print(f"{r.module:<16}{r.mutants:>9}{r.killed:>8}{len(r.equivalent):>8}"
              f"{len(r.survivors):>10}{r.score:>8.1%}{flag}")


if __name__ == "__main__":
    sys.exit(main())
