"""Run every benchmark of the README's Performance section side by side and print one table.

    .venv/bin/python -m tests.benchmarks            # full: 1,000 pages, 2,000 creates, 1M live
    .venv/bin/python -m tests.benchmarks --quick    # smoke run, under a minute
    .venv/bin/python -m tests.benchmarks --budget   # the request budget only (time scaled)
    .venv/bin/python -m tests.benchmarks --budget --real-time   # at the real 60 s window
    .venv/bin/python -m tests.benchmarks --answers  # test (120/min, 2 s answers) and check

The budget benchmarks scale time by default: the emulator's rate-limit window is 6 s instead
of 60 s (the same number of requests per window), so that they take about 2 minutes instead of
20; `--real-time` runs them at the real window.

The emulator runs as a separate process (`reconciler emulator`), so that it does not share
the client's GIL; its `--latency-ms` plays the network.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks import answers, budget
from tests.benchmarks.applying import apply_creates, ideal_apply, ideal_apply_checked
from tests.benchmarks.capacity import measure_capacity
from tests.benchmarks.emulator_process import emulator_process, seed
from tests.benchmarks.listing import critical_path, list_with_client, list_with_sdk
from tests.benchmarks.planning import measure_in_subprocess

LISTED, APPLIED = 1001, 2002


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark is."""

    pages: int
    parallelisms: tuple[int, ...]
    creates: int
    planning: tuple[tuple[int, int], ...]  # (live, declared)
    capacity_seconds: float


FULL = Sizes(1000, (1, 4, 8, 16), 2000,
             ((10_000, 1_000), (100_000, 10_000), (1_000_000, 100_000)), 3.0)
QUICK = Sizes(100, (1, 4, 8, 16), 400, ((10_000, 1_000), (100_000, 10_000)), 1.0)
LATENCY_MS = 20.0
APPLY_PARALLELISM = 8


def main() -> None:
    """Parse the options, run everything, print the table."""
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller smoke configuration")
    parser.add_argument("--budget", action="store_true",
                        help="only the request-budget benchmarks")
    parser.add_argument("--real-time", action="store_true",
                        help="budget benchmarks at the real 60 s window (about 30 minutes)")
    parser.add_argument("--only", choices=("setup", "huge", "chaos"), action="append",
                        help="with --budget: only these budget benchmarks (repeatable)")
    parser.add_argument("--answers", action="store_true",
                        help="only `test` (50 prompts at 120/min, 2 s answers; with "
                             "--quick, the window scaled to 6 s) and `check` of 1,000 answers")
    options = parser.parse_args()
    sizes = QUICK if options.quick else FULL
    if options.answers:
        print(answers.report(scaled=options.quick))
        return
    rows: list[tuple[str, str, str, str]] = []
    window = 60.0 if options.real_time else SCALED_WINDOW
    if options.budget:
        _budget(rows, window=window, only=set(options.only or ("setup", "huge", "chaos")))
        _print(rows, sizes)
        return
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as directory:
        db = Path(directory) / "emulator.db"
        seed(db, {LISTED: sizes.pages * 10, APPLIED: 0})
        capacity = _capacity(db, sizes, rows)
        _network(db, sizes, rows, capacity)
    _planning(sizes, rows)
    _budget(rows, window=window, only={"setup", "huge", "chaos"})
    _print(rows, sizes)


def _capacity(db: Path, sizes: Sizes, rows: list[tuple[str, str, str, str]]) -> float:
    with emulator_process(db, latency_ms=0) as emulator:
        measure_capacity(emulator, LISTED, parallelism=16, seconds=0.3)  # warm up
        run = measure_capacity(emulator, LISTED, parallelism=16, seconds=sizes.capacity_seconds)
    rows.append(("4 emulator capacity, GET page 1, c=16, 0 ms",
                 f"{run.rate:,.0f} req/s", f"{run.emulator_cpu / run.wall:.0%} of a core",
                 "reference"))
    return run.rate


def _network(
    db: Path, sizes: Sizes, rows: list[tuple[str, str, str, str]], capacity: float
) -> None:
    latency = LATENCY_MS / 1000
    with emulator_process(db, latency_ms=LATENCY_MS) as emulator:
        list_with_client(emulator, LISTED, parallelism=4)  # warm up imports and the database
        sdk = list_with_sdk(emulator, LISTED)
        rows.append((f"1 SDK sequential loop, {sdk.pages} pages", f"{sdk.wall:.2f} s",
                     f"{sdk.wall / (latency * sdk.pages):.2f}x L*P", "baseline"))
        for c in sizes.parallelisms:
            run = list_with_client(emulator, LISTED, parallelism=c)
            ideal = critical_path(latency, run.pages, c)
            ratio, speedup = run.wall / ideal, sdk.wall / run.wall
            rows.append((
                f"1 reconciler listing, {run.pages} pages, c={c}", f"{run.wall:.2f} s",
                f"{ratio:.2f}x crit. path; {speedup:.1f}x SDK ({speedup / c:.2f}c); "
                f"{run.requests / run.wall / capacity:.0%} of capacity",
                _verdict(ratio <= 1.25 and speedup >= 0.8 * c),
            ))
        run = apply_creates(emulator, APPLIED, operations=sizes.creates,
                            parallelism=APPLY_PARALLELISM)
    ideal = ideal_apply(latency, run.operations, APPLY_PARALLELISM)
    checked = ideal_apply_checked(latency, run.operations, APPLY_PARALLELISM)
    rows.append((
        f"3 apply {run.operations} creates, c={APPLY_PARALLELISM}", f"{run.wall:.2f} s",
        f"{run.wall / ideal:.2f}x L*ceil(N/c), {run.wall / checked:.2f}x with the duplicate "
        f"check's listing; {run.requests} requests, "
        f"{run.requests / run.wall / capacity:.0%} of capacity",
        _verdict(run.wall / ideal <= 1.25 and run.done == run.operations),
    ))


def _planning(sizes: Sizes, rows: list[tuple[str, str, str, str]]) -> None:
    for prune in (False, True):
        previous = None
        for live, declared in sizes.planning:
            run = measure_in_subprocess(live, declared, prune=prune)
            growth = "" if previous is None else f"; x{run.cpu / previous:.1f} CPU per 10x"
            previous = run.cpu
            target = live == 100_000
            rows.append((
                f"2 plan {live:,} live / {declared:,} declared, prune "
                f"{'on' if prune else 'off'} ({run.operations:,} ops)",
                f"{run.cpu:.2f} s CPU",
                f"peak RSS {run.peak_rss_mb:.0f} MB (before planning "
                f"{run.baseline_rss_mb:.0f} MB){growth}",
                _verdict(run.cpu < 1.0 and run.peak_rss_mb < 300) if target else "-",
            ))


SCALED_WINDOW = 6.0


def _budget(rows: list[tuple[str, str, str, str]], *, window: float, only: set[str]) -> None:
    """The request budget: the realistic setup at 120/min (alone, then beside a production
    client at 25 %), the time it takes at 60, 90 and 120/min, a huge prune-off project, and
    chaos at a rate limit. Each row is also printed as soon as it is measured."""
    scale = "" if window == 60 else f", window scaled to {window:g} s"

    def add(row: tuple[str, str, str, str]) -> None:
        rows.append(row)
        print(" | ".join(row), flush=True)

    with tempfile.TemporaryDirectory(prefix="reconciler-budget-") as name:
        directory = Path(name)
        if "setup" in only:
            for limit, production, per_page in ((120, 0.0, "ignored"), (120, 0.0, "honoured"),
                                                (120, 0.25, "ignored"), (90, 0.0, "ignored"),
                                                (60, 0.0, "ignored")):
                run = budget.run_setup(directory, limit=limit, window=window,
                                       latency_ms=LATENCY_MS, production_share=production,
                                       per_page=per_page)
                add(_budget_row(run, production, scale))
        if "huge" in only:
            for per_page in ("ignored", "honoured"):
                huge = budget.huge_prune_off(directory, limit=120, window=window,
                                             per_page=per_page)
                add((f"5 plan prune-off project, {huge.live:,} live / {huge.declared} declared, "
                     f"{budget.PER_PAGE[per_page]} per page (per_page {per_page}){scale}",
                     f"{huge.requests} requests",
                     f"{huge.refused} refused; plan {'made' if huge.plan_ok else 'FAILED'}",
                     _verdict(huge.requests <= 60 and huge.refused == 0 and huge.plan_ok)))
        if "chaos" in only:
            chaos = budget.chaos_with_rate_limit(directory)
            add(("5 chaos: 30 % 5xx, 20 % commit-then-fail, 10 % drops, 5 req/s limit; 45 "
                 "conversations, 70 sends, 5 deletes",
                 f"{chaos.applies} apply run(s), {chaos.wall:.0f} s",
                 f"converged {chaos.converged}; {len(chaos.broken)} broken promises "
                 f"(duplicates, prompts twice, unbacked deletes); {chaos.requests} requests, "
                 f"{chaos.rate_limited} answered 429",
                 _verdict(chaos.converged and chaos.applies <= 3 and not chaos.broken)))
            for problem in chaos.broken:
                print(f"chaos: {problem}")


def _budget_row(run: budget.BudgetRun, production: float,
                scale: str) -> tuple[str, str, str, str]:
    wall_ratio, request_ratio = run.wall / run.ideal, run.requests / run.minimum
    who = f", production client at {production:.0%} of the limit" if production else ""
    measured = f"{run.wall:.1f} s"
    if run.window != 60:
        measured += f" (= {run.real_minutes:.1f} min at the real window)"
    against = (f"{run.requests} requests ({run.plan_requests} planning), {run.refused} refused; "
               f"wall {wall_ratio:.2f}x requests/allowed rate; {request_ratio:.2f}x the "
               f"minimum {run.minimum}; converged {run.converged}")
    met = run.refused == 0 and run.converged and wall_ratio <= 1.1 and request_ratio <= 1.2
    if production:
        against += f"; production {run.production_sent} sent, {run.production_refused} refused"
        met = met and run.production_refused == 0
    return (f"5 plan + apply, 3 projects / 600 live / 40 declared / 10 sends / 5 deletes, "
            f"per_page {run.per_page}, {run.limit}/min{scale}{who}", measured, against,
            _verdict(met))


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def _print(rows: list[tuple[str, str, str, str]], sizes: Sizes) -> None:
    header = ("benchmark", "measured", "against the target", "target")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print(f"cores: {os.cpu_count()}; latency {LATENCY_MS:g} ms; "
          f"{'quick' if sizes is QUICK else 'full'} run")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in sorted(rows, key=lambda r: r[0][0]):
        print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
