"""Variants of the real service: behaviours the API does not document, each one switch.

The emulator follows the published API by default. Each field of `Variants` makes it behave
the way the real service has been seen, or might plausibly, behave instead, so that every
scenario can be run against each answer to an open question. The fields' metadata are the
command-line flags of `reconciler emulator`: a new variant is one field here and one branch
where the emulator serves the request.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, fields
from typing import Any

WIRES = ("spec", "observed-2023", "observed-2026")
NAME_FILTERS = ("exact", "prefix", "contains", "contains-ci")
SEND_COMMITS = ("start", "end")
USER_FILTER_ME = ("supported", "unsupported")
ERROR_TEXTS = ("project", "agent")
PER_PAGE = ("ignored", "honoured")
MAX_SEND_DELAY_MS = 600_000.0
MAX_PER_PAGE = 100  # the largest page a service that honours `per_page` serves


class VariantConfigError(ValueError):
    """A variant setting is invalid; the message says which and why."""


def _flag(help_text: str, **argparse_options: Any) -> dict[str, Any]:
    return {"help": help_text, "argparse": argparse_options}


@dataclass(frozen=True)
class Variants:
    """How the emulated service answers where the API leaves it open (defaults: as documented).

    - `wire`: `spec` (the OpenAPI document's shapes), `observed-2023` (what the real service
      answered in 2023: integer ids, ISO timestamps with microseconds and `Z`, the
      `25 Jun 2023 05:01:11` form in message listings, string citations, no `conversation_id`,
      `metadata` or `response_feedback` in messages, message pages of 20, a `start` stream
      event and a `finish` event without text) or `observed-2026` (the documented objects, and
      streams as the clients of 2025-2026 read them: SSE `event:` lines beside `data:`, a
      `start` event, a `finish` event with integer citations; integer citations in messages).
    - `team_filter_excludes_owner`: `userFilter=team_member` leaves out the key's own user.
    - `trim_text`: names and prompts are stored without surrounding whitespace.
    - `send_delay_ms` and `send_commits`: a slow model; the message is stored at the `start` of
      the answer or at its `end`.
    - `name_filter`: how the `name` query parameter matches.
    - `cache_repeated_prompts`: a prompt already sent to the project, sent again without
      `Cache-Control: no-cache`, gets the old message back and stores nothing.
    - `escape_prompts`: prompts are stored HTML-escaped, a change no normal form undoes.
    - `user_filter_me`: `userFilter=me` is served (the 2025 document) or refused with 400, as
      a deployment from before it was.
    - `error_texts`: error messages name a `project` ("Project with id 7 not found") or an
      `agent` ("Agent with id 7 not found"), the newer product name.
    - `per_page`: the `per_page` query parameter of conversation listings is `ignored` (the
      server's page size; undocumented) or `honoured` (up to `MAX_PER_PAGE`).
    """

    wire: str = field(default="spec", metadata=_flag(
        "response shapes: spec (the OpenAPI document) or observed-2023 (what the real service "
        "answered: integer ids, ISO timestamps, string citations, message pages of 20)",
        choices=WIRES))
    team_filter_excludes_owner: bool = field(default=False, metadata=_flag(
        "userFilter=team_member leaves out the API key's own user's conversations"))
    trim_text: bool = field(default=False, metadata=_flag(
        "store names and prompts without surrounding whitespace"))
    send_delay_ms: float = field(default=0.0, metadata=_flag(
        "a slow model: each sent message takes this long to answer", metavar="MS"))
    send_commits: str = field(default="start", metadata=_flag(
        "when a slow model's message is stored: at the start or at the end of the answer",
        choices=SEND_COMMITS))
    name_filter: str = field(default="contains-ci", metadata=_flag(
        "how the name filter of conversation listings matches", choices=NAME_FILTERS))
    cache_repeated_prompts: bool = field(default=False, metadata=_flag(
        "a prompt sent again without Cache-Control: no-cache gets the old answer and stores "
        "no message"))
    escape_prompts: bool = field(default=False, metadata=_flag(
        "store prompts HTML-escaped (& < > as &amp; &lt; &gt;)"))
    user_filter_me: str = field(default="supported", metadata=_flag(
        "userFilter=me on conversation listings: supported, or unsupported (400, as a "
        "deployment from before 2025)", choices=USER_FILTER_ME))
    error_texts: str = field(default="project", metadata=_flag(
        "error messages say 'Project with id N not found' (project) or 'Agent with id N not "
        "found' (agent, the newer name)", choices=ERROR_TEXTS))
    per_page: str = field(default="ignored", metadata=_flag(
        "the per_page parameter of conversation listings: ignored (the server's page size) or "
        f"honoured (up to {MAX_PER_PAGE})", choices=PER_PAGE))

    def __post_init__(self) -> None:
        for name, allowed in (("wire", WIRES), ("name_filter", NAME_FILTERS),
                              ("send_commits", SEND_COMMITS), ("user_filter_me", USER_FILTER_ME),
                              ("error_texts", ERROR_TEXTS), ("per_page", PER_PAGE)):
            if getattr(self, name) not in allowed:
                raise VariantConfigError(f"{_flag_name(name)} must be one of "
                                         f"{', '.join(allowed)}, not {getattr(self, name)!r}")
        delay = self.send_delay_ms
        if not (math.isfinite(delay) and 0 <= delay <= MAX_SEND_DELAY_MS):
            raise VariantConfigError(f"--send-delay-ms must be between 0 and "
                                     f"{MAX_SEND_DELAY_MS:g}, not {delay}")

    @property
    def observed(self) -> bool:
        """Whether answers take the shapes the real service was seen to send in 2023."""
        return self.wire == "observed-2023"

    @property
    def named_events(self) -> bool:
        """Whether streams carry SSE `event:` lines and integer citations (2025-2026)."""
        return self.wire == "observed-2026"

    @property
    def agent(self) -> str:
        """What error messages call a project: "Project" or "Agent"."""
        return "Agent" if self.error_texts == "agent" else "Project"

    def describe(self) -> str:
        """The flags that differ from the documented behaviour ("" when none do)."""
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if value == item.default:
                continue
            flag = _flag_name(item.name)
            shown.append(flag if value is True else f"{flag} {value:g}" if isinstance(
                value, float) else f"{flag} {value}")
        return " ".join(shown)


def _flag_name(attribute: str) -> str:
    return "--" + attribute.replace("_", "-")


def add_variant_arguments(parser: argparse.ArgumentParser) -> None:
    """One command-line flag per field of `Variants`, in an argument group of its own."""
    group = parser.add_argument_group(
        "variants of the real service", "behaviours the API does not document (default: as "
        "documented)")
    for item in fields(Variants):
        options = dict(item.metadata["argparse"])
        if item.type in (bool, "bool"):
            options["action"] = "store_true"
        elif item.type in (float, "float"):
            options["type"] = float
        group.add_argument(_flag_name(item.name), dest=f"variant_{item.name}",
                           default=item.default, help=item.metadata["help"], **options)


def variants_from_args(args: argparse.Namespace) -> Variants:
    """The variants given on the command line. Raises VariantConfigError."""
    given = {item.name: getattr(args, f"variant_{item.name}") for item in fields(Variants)}
    return Variants(**given)
