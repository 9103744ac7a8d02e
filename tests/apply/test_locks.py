"""Project locks: one writing run per project on one machine, a holder named from a file that
is checked, never trusted, and nothing left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.apply.locks import LockedError, lock_path, project_locks
from reconciler.errors import InputError
from tests.workspace import held_by_another

API = "http://127.0.0.1:8765"


def refusal(root: Path, project_ids: tuple[int, ...] = (7,),
            error: type[Exception] = LockedError) -> str:
    """Why taking the locks of `project_ids` under `root` is refused."""
    with pytest.raises(error) as raised, \
            project_locks(API, project_ids, command="apply", root=root):
        pytest.fail("the lock was taken")
    return str(raised.value)


def test_a_held_project_is_refused_naming_the_holder(tmp_path: Path) -> None:
    path = lock_path(tmp_path, API, 7)
    holder = {"pid": 4242, "host": "ci-runner-3", "command": "apply", "since": "2026-01-01T00:00Z"}
    with held_by_another(path, json.dumps(holder).encode()):
        refused = refusal(tmp_path)
    assert refused == (
        f"project 7 is being changed by another run (pid 4242 on ci-runner-3 running apply since "
        f"2026-01-01T00:00Z; lock file {path}): nothing was done; wait for it to end, then run "
        "again")


@pytest.mark.parametrize(
    ("holder", "shown"),
    [
        (b"", "holder unknown"),
        (b"[" * 4000, "holder unknown"),
        (b"\xff\xfe", "holder unknown"),
        (b'{"pid": true, "host": "\\u001b[31mred", "command": "' + b"x" * 500 + b'"}', "pid ?"),
        (b'{"pid": 1e999}', "holder unknown"),
    ],
    ids=["empty", "deeply-nested", "not-utf8", "escape-and-long", "huge-number"],
)
def test_a_holder_that_cannot_be_read_is_not_shown(
    tmp_path: Path, holder: bytes, shown: str
) -> None:
    with held_by_another(lock_path(tmp_path, API, 7), holder):
        refused = refusal(tmp_path)
    assert f"({shown}" in refused
    assert "\x1b" not in refused and "xxxx" not in refused


def test_locks_are_taken_all_or_none_and_released_after(tmp_path: Path) -> None:
    with held_by_another(lock_path(tmp_path, API, 2), b""):
        refusal(tmp_path, (3, 1, 2))
    with project_locks(API, [1, 2, 3], command="apply", root=tmp_path):
        written = json.loads(lock_path(tmp_path, API, 1).read_text())
        assert (written["pid"], written["command"]) == (os.getpid(), "apply")
    with project_locks(API, [1, 2, 3], command="restore", root=tmp_path):
        pass


def test_other_apis_and_projects_do_not_share_a_lock(tmp_path: Path) -> None:
    with project_locks(API, [7], command="apply", root=tmp_path), \
            project_locks("sandbox", [7], command="apply", root=tmp_path), \
            project_locks(API, [8], command="apply", root=tmp_path):
        assert len({lock_path(tmp_path, a, p) for a, p in [(API, 7), ("sandbox", 7), (API, 8)]}) \
            == 3


@pytest.mark.parametrize("obstacle", ["file-as-directory", "symlink", "directory"])
def test_a_lock_that_cannot_be_made_is_an_error_with_its_path(
    tmp_path: Path, obstacle: str
) -> None:
    path = lock_path(tmp_path / "locks", API, 7)
    if obstacle == "file-as-directory":
        (tmp_path / "locks").write_text("not a directory")
    elif obstacle == "symlink":
        path.parent.mkdir()
        path.symlink_to(tmp_path / "elsewhere")
    else:
        path.mkdir(parents=True)
    assert str(tmp_path / "locks") in refusal(tmp_path / "locks", error=InputError)
    assert not (tmp_path / "elsewhere").exists()
