"""The variants of the real service every core scenario runs under, and the chaos apply under
the hardest combination: what the real service was seen to send, names and prompts stored
trimmed, a slow model whose message is stored only when it has answered (after the client lost
the answer), and a name filter that matches exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.emulator import Emulator, Variants
from tests.reliability.chaos import ChaosResult, chaos_faults, run_chaos
from tests.reliability.scenario import build_scenario

SLOW = {"send_delay_ms": 150.0}
VARIANTS: dict[str, dict[str, Any]] = {
    "spec": {},
    "observed-2023": {"wire": "observed-2023"},
    "team-filter-excludes-owner": {"team_filter_excludes_owner": True},
    "trim-text": {"trim_text": True},
    "slow-model-commits-at-start": {**SLOW, "send_commits": "start"},
    "slow-model-commits-at-end": {**SLOW, "send_commits": "end"},
    "name-filter-exact": {"name_filter": "exact"},
    "name-filter-prefix": {"name_filter": "prefix"},
    "name-filter-contains": {"name_filter": "contains"},
    "cache-repeated-prompts": {"cache_repeated_prompts": True},
    "escaped-prompts": {"escape_prompts": True},
    "observed-2026": {"wire": "observed-2026"},
    "user-filter-me-unsupported": {"user_filter_me": "unsupported"},
    "agent-error-texts": {"error_texts": "agent"},
    "per-page-honoured": {"per_page": "honoured"},
    "all-at-once": {"wire": "observed-2023", "team_filter_excludes_owner": True,
                    "trim_text": True, **SLOW, "send_commits": "end", "name_filter": "exact",
                    "cache_repeated_prompts": True, "user_filter_me": "unsupported",
                    "error_texts": "agent", "per_page": "honoured"},
}

# The send's answer takes 300 ms, and under a slow model a share of sends lose their answer a
# third of the way (LOST_SENDS): the message is stored after that; the client, with its
# default settings, must find it by watching the transcript, never send the prompt twice.
HARDEST = Variants(wire="observed-2023", trim_text=True, send_delay_ms=300.0,
                   send_commits="end", name_filter="exact")
LOST_SENDS = 0.25


def chaos_under(
    variants: Variants, workdir: Path, *, projects: int, units: int, seed: int,
    rate_limited: float = 0.10,
) -> ChaosResult:
    """A chaos apply (faults, drops, a `rate_limited` share of 429s) of a padded scenario
    against an emulator behaving as `variants`, with the client's default settings; under a
    slow model, a `LOST_SENDS` share of sends lose their answer a third of the way through
    it."""
    with Emulator(api_key="k-variants-0123", faults=chaos_faults(seed=seed),
                  variants=variants) as emulator:
        emulator.start()
        scenario = build_scenario(emulator, workdir, projects=projects, units=units, seed=seed,
                                  padded=True)
        slow = variants.send_delay_ms / 1000.0
        return run_chaos(emulator, scenario, workdir, seed=seed, rate_limited=rate_limited,
                         lose_sends=LOST_SENDS if slow else 0.0, lose_after=slow / 3)
