"""On-demand reliability run: `python -m tests.reliability [--long] [--variants] [--seed N]`.

Without --long it repeats the CI configuration; with --long the long one: a chaos apply
of 500 operations over 5 projects, 50 SIGKILL trials, and a larger crowd of concurrent writers.
With --variants it runs a chaos apply under every variant of the real service instead (and
under the hardest combination), bigger with --long.
Prints the figures (runs needed, requests retried, faults injected, time) and exits 1 if any
promise was broken.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from reconciler.emulator import Emulator, Faults, Variants
from tests.reliability.chaos import chaos_faults, run_chaos
from tests.reliability.crash import crash_trial
from tests.reliability.scenario import build_scenario
from tests.reliability.variants import HARDEST, VARIANTS, chaos_under
from tests.reliability.writers import Crowd, Writer


def chaos(workdir: Path, *, projects: int, units: int, seed: int) -> bool:
    """The chaos apply; True when it converged in at most 3 runs with every promise kept."""
    with Emulator(api_key="k-chaos-long", faults=chaos_faults(seed=seed)) as emulator:
        emulator.start()
        scenario = build_scenario(emulator, workdir, projects=projects, units=units, seed=seed)
        result = run_chaos(emulator, scenario, workdir, seed=seed)
    broken = [problem for run in result.runs for problem in run.broken]
    print(f"chaos, {scenario.operations} operations over {projects} projects: "
          f"{result.summary()}")
    for number, run in enumerate(result.runs, start=1):
        print(f"  run {number}: planned {run.planned}, outcomes {run.outcomes}, "
              f"plan errors {len(run.plan_errors)}, broken {len(run.broken)}")
    _show(broken)
    return result.converged and result.applies <= 3 and not broken


def crashes(workdir: Path, *, trials: int, units: int, seed: int) -> bool:
    """SIGKILL trials; True when every kill and recovery kept every promise."""
    rng = random.Random(seed)
    started, failures, mid = time.monotonic(), 0, 0
    faults = Faults(latency_ms=15, latency_jitter_ms=10, seed=seed)
    with Emulator(api_key="k-crash-long", faults=faults) as emulator:
        emulator.start()
        for number in range(trials):
            trial = crash_trial(emulator, workdir / f"crash{number}", first_project=8000 + number,
                                units=units, delay=rng.uniform(0.0, 0.3), parallelism=2,
                                seed=seed + number)
            mid += trial.killed_mid_apply
            broken = [*trial.broken_after_kill, *trial.broken_after_recovery]
            if broken or trial.recovery_code or trial.plan_code:
                failures += 1
                print(f"  trial {number}: recovery exit {trial.recovery_code}, "
                      f"plan exit {trial.plan_code}")
                _show(broken)
    print(f"crash: {trials} SIGKILLs ({mid} mid-apply), {failures} failed; "
          f"{time.monotonic() - started:.1f} s")
    return failures == 0


def writers(workdir: Path, *, projects: int, units: int, seed: int, pause: float) -> bool:
    """Concurrent visitors and teammates, each acting every `pause` seconds; True when theirs
    were untouched and ours converged."""
    with Emulator(api_key="k-writers-long", faults=Faults(latency_ms=5, seed=seed),
                  page_size=8) as emulator:
        emulator.start()
        scenario = build_scenario(emulator, workdir, projects=projects, units=units, seed=seed)
        crowd = Crowd(emulator, [
            Writer(creator, expect.project_id, [*expect.declared, "Stray"], seed=seed + i)
            for i, (creator, expect) in enumerate(
                (c, e) for e in scenario.projects for c in ("visitor", "teammate"))
        ], pause=pause)
        crowd.start()
        try:
            result = run_chaos(emulator, scenario, workdir, rate_limited=0.0, seed=seed)
        finally:
            crowd.stop()
        theirs = [p for w in crowd.writers for p in w.missing_or_changed(emulator)]
    broken = [problem for run in result.runs for problem in run.broken] + theirs
    actions = sum(w.actions for w in crowd.writers)
    print(f"concurrent writers ({actions} of their writes): {result.summary()}")
    _show(broken + [repr(error) for error in crowd.errors])
    return result.converged and not broken and not crowd.errors


def variants(workdir: Path, *, projects: int, units: int, seed: int) -> bool:
    """A chaos apply under each variant of the real service; True when every one converged in
    at most 3 runs with every promise kept."""
    settings = {name: Variants(**options) for name, options in VARIANTS.items()}
    settings["hardest"] = HARDEST
    ok = True
    for name, variant in settings.items():
        result = chaos_under(variant, workdir / name, projects=projects, units=units, seed=seed)
        broken = [problem for run in result.runs for problem in run.broken]
        print(f"variant {name} ({variant.describe() or 'as documented'}): {result.summary()}")
        _show(broken)
        ok = ok and result.converged and result.applies <= 3 and not broken
    return ok


def _show(problems: list[str]) -> None:
    for problem in problems[:20]:
        print(f"    BROKEN: {problem}")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen configuration; 0 when every promise held, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m tests.reliability", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--long", action="store_true",
                        help="the long configuration (README, Reliability)")
    parser.add_argument("--variants", action="store_true",
                        help="a chaos apply under every variant of the real service instead")
    parser.add_argument("--seed", type=int, default=20240817)
    args = parser.parse_args(argv)
    if args.variants:
        with tempfile.TemporaryDirectory(prefix="reliability-") as directory:
            held = variants(Path(directory), projects=4 if args.long else 2,
                            units=12 if args.long else 5, seed=args.seed)
        print("OK: every promise held" if held else "FAILED: see BROKEN lines above")
        return 0 if held else 1
    size = ({"projects": 5, "units": 25, "trials": 50, "crash_units": 6,
             "pause": 0.1} if args.long
            else {"projects": 3, "units": 10, "trials": 20, "crash_units": 4, "pause": 0.04})
    with tempfile.TemporaryDirectory(prefix="reliability-") as directory:
        root = Path(directory)
        results = [
            chaos(root / "chaos", projects=size["projects"], units=size["units"],
                  seed=args.seed),
            crashes(root / "crash", trials=size["trials"], units=size["crash_units"],
                    seed=args.seed),
            writers(root / "writers", projects=size["projects"], units=size["units"],
                    seed=args.seed, pause=size["pause"]),
        ]
    print("OK: every promise held" if all(results) else "FAILED: see BROKEN lines above")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
