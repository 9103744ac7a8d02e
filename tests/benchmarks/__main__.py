"""Run every benchmark of DESIGN §9 side by side and print one table.

    .venv/bin/python -m tests.benchmarks            # full: 1,000 pages, 2,000 creates, 1M live
    .venv/bin/python -m tests.benchmarks --quick    # smoke run, under a minute

The emulator runs as a separate process (`reconciler emulator`), so that it does not share
the client's GIL; its `--latency-ms` plays the network.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.applying import apply_creates, ideal_apply
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
    sizes = QUICK if parser.parse_args().quick else FULL
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as directory:
        db = Path(directory) / "emulator.db"
        seed(db, {LISTED: sizes.pages * 10, APPLIED: 0})
        capacity = _capacity(db, sizes, rows)
        _network(db, sizes, rows, capacity)
    _planning(sizes, rows)
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
    rows.append((
        f"3 apply {run.operations} creates, c={APPLY_PARALLELISM}", f"{run.wall:.2f} s",
        f"{run.wall / ideal:.2f}x L*ceil(N/c); {run.requests} requests, "
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
