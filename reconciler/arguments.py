"""Command-line argument types that the tool's parser and the emulator's both use.

The emulator may import this module (it stands for the real service, and shares only plain
helpers with the tool): one whole-number check, one wording of its errors, for both programs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def whole_number(minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `minimum` to `maximum`, in ASCII digits.

    Never converts more digits than `maximum` has (5,000 digits cost nothing), and never
    accepts what `int` alone would ("+5", "1_000", other scripts' digits).
    """

    def parse(text: str) -> int:
        digits = text.strip()
        if not (digits.isascii() and digits.isdigit()) or len(digits) > len(str(maximum)):
            raise argparse.ArgumentTypeError(f"expected a whole number from {minimum} to "
                                             f"{maximum}")
        value = int(digits)
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be from {minimum} to {maximum}, not {value}")
        return value

    return parse
