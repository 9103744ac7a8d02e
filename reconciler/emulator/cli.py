"""`reconciler emulator`: arguments and the foreground server loop."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_emulator_command(
    commands: Any, *, global_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Register the `emulator` sub-command on `commands` (an argparse sub-parsers object)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "emulator", help="serve a local emulator of the CustomGPT.ai API"
    )
    global_options(parser)
