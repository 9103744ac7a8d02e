"""The whole-number argument type that the tool and the emulator share: the same numbers are
accepted, the same are refused, in the same words, by both command lines."""

from __future__ import annotations

import argparse
import io

import pytest

from reconciler.arguments import whole_number
from reconciler.cli.main import main

MAX = 2**63 - 1


@pytest.mark.parametrize("text", ["+5", "-1", "1_0", "٣", "1e3", "0x1", "", " ", "5" * 5000,
                                  "9" * 20])
@pytest.mark.parametrize("argv", [["emulator", "--page-size"], ["plan", "-f", "x.yaml",
                                                                 "--parallelism"]],
                         ids=["emulator", "tool"])
def test_what_is_not_a_whole_number_in_range_is_refused_by_both_programs(
    argv: list[str], text: str
) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, text], env={}, stdout=out, stderr=err)
    assert code == 1 and out.getvalue() == ""
    assert f"expected a whole number from 1 to {MAX}" in err.getvalue()
    assert "Traceback" not in err.getvalue()


@pytest.mark.parametrize("number", [0, MAX + 1])
@pytest.mark.parametrize("argv", [["emulator", "--page-size"], ["plan", "-f", "x.yaml",
                                                                 "--parallelism"]],
                         ids=["emulator", "tool"])
def test_a_number_out_of_range_is_named(argv: list[str], number: int) -> None:
    err = io.StringIO()
    assert main([*argv, str(number)], env={}, stdout=io.StringIO(), stderr=err) == 1
    assert f"must be from 1 to {MAX}, not {number}" in err.getvalue()


def test_the_bounds_are_included_and_surrounding_blanks_ignored() -> None:
    parse = whole_number(2, 10)
    assert [parse("2"), parse("10"), parse(" 07 ")] == [2, 10, 7]
    for text in ("1", "11", "010 0"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)
