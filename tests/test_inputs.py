"""Input files are read the one way (`reconciler/inputs.py`): a regular file up to a limit,
never a FIFO that would wait forever, a device that never ends, or a directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.inputs import KIB, UnreadableFile, amount, read_input


def _refusal(path: str | Path, *, limit: int = 64 * KIB) -> UnreadableFile:
    with pytest.raises(UnreadableFile) as raised:
        read_input(path, limit=limit)
    return raised.value


def test_a_regular_file_is_read_whole_up_to_its_limit(tmp_path: Path) -> None:
    file = tmp_path / "key"
    file.write_bytes(b"x" * 1000)
    assert read_input(file, limit=1000) == b"x" * 1000
    refused = _refusal(file, limit=999)
    assert (refused.reason, refused.too_large) == ("file is 1000 bytes, over the 999 bytes "
                                                   "limit", True)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert _refusal(fifo).reason == "a FIFO (named pipe), not a regular file"


def test_a_device_that_never_ends_is_refused_without_reading_it() -> None:
    refused = _refusal("/dev/zero")
    assert (refused.reason, refused.too_large) == ("a character device, not a regular file",
                                                   False)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert _refusal(tmp_path).reason == "a directory, not a regular file"


def test_a_sparse_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge"
    with huge.open("wb") as stream:
        stream.truncate(1 << 40)  # a terabyte of nothing: reading it would never end
    assert _refusal(huge).reason == "file is 1099511627776 bytes, over the 64 KiB limit"


@pytest.mark.parametrize(("path", "reason"), [
    ("missing", "no such file or directory"), ("bad\0name", "not a valid path"),
    ("file/inside", "not a directory")], ids=["missing", "nul-byte", "under-a-file"])
def test_a_path_that_cannot_be_opened_says_why(tmp_path: Path, path: str, reason: str) -> None:
    (tmp_path / "file").write_text("x")
    assert _refusal(f"{tmp_path}/{path}").reason == reason


def test_a_symbolic_link_to_a_file_is_read_and_one_to_a_fifo_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("key")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "to-file").symlink_to(tmp_path / "file")
    (tmp_path / "to-fifo").symlink_to(tmp_path / "fifo")
    assert read_input(tmp_path / "to-file", limit=10) == b"key"
    assert "FIFO" in _refusal(tmp_path / "to-fifo").reason


@pytest.mark.parametrize(("size", "words"), [
    (100, "100 bytes"), (64 * KIB, "64 KiB"), (10 << 20, "10 MiB"), (1500, "1500 bytes")])
def test_limits_are_said_in_words(size: int, words: str) -> None:
    assert amount(size) == words
