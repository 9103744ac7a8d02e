"""Project locks: one writing run per project on one machine, a holder named from a file that
is checked, never trusted, and nothing left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.apply.locks import LockedError, lock_path, project_locks, server_identity
from reconciler.errors import InputError
from tests.saved_plans import declare_conversations, deleted_with_backup
from tests.workspace import PROJECT, Workspace, held_by_another

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


def test_a_symbolic_link_as_the_lock_directory_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "locks").symlink_to(elsewhere)
    refused = refusal(tmp_path / "state" / "locks", error=InputError)
    assert refused == (f"the lock directory {tmp_path / 'state' / 'locks'} is a symbolic link; "
                       "reconciler does not follow one there: remove it, then run again")
    assert list(elsewhere.iterdir()) == []


def test_a_symbolic_link_as_the_state_directory_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / ".reconciler").symlink_to(elsewhere)
    refused = refusal(tmp_path / ".reconciler" / "locks", error=InputError)
    assert refused.startswith(f"the state directory {tmp_path / '.reconciler'} is a symbolic "
                              "link")
    assert list(elsewhere.iterdir()) == []


def test_a_fifo_as_a_lock_file_is_refused(tmp_path: Path) -> None:
    path = lock_path(tmp_path / "locks", API, 7)
    path.parent.mkdir()
    os.mkfifo(path)
    assert refusal(tmp_path / "locks", error=InputError) == (
        f"the lock file {path} is a FIFO (named pipe), not a regular file: remove it, then run "
        "again")


def test_the_state_directory_made_for_locks_ignores_itself(tmp_path: Path) -> None:
    with project_locks(API, [7], command="apply", root=tmp_path / ".reconciler" / "locks"):
        pass
    assert (tmp_path / ".reconciler" / ".gitignore").read_text().splitlines()[-1] == "*"


@pytest.mark.parametrize("spelling", [
    "http://localhost:8765", "http://127.0.0.1:8765/", "http://[::1]:8765", "http://LOCALHOST.:8765",
    "http://127.0.0.2:8765", "HTTP://LocalHost:8765//", "http://[::ffff:127.0.0.1]:8765"])
def test_one_loopback_server_has_one_lock_however_it_is_spelled(
    tmp_path: Path, spelling: str
) -> None:
    with held_by_another(lock_path(tmp_path, API, 7), b""), pytest.raises(LockedError), \
            project_locks(spelling, [7], command="apply", root=tmp_path):
        pytest.fail("the lock was taken")


@pytest.mark.parametrize(("one", "other"), [
    ("https://api.example.com", "https://API.example.com.:443/"),
    ("http://api.example.com", "http://api.example.com:80"),
    ("https://api.example.com/v2/", "https://api.example.com/v2"),
], ids=["case-dot-port-slash", "http-default-port", "path"])
def test_spellings_of_one_server_share_a_lock(one: str, other: str) -> None:
    assert server_identity(one) == server_identity(other)
    assert lock_path(Path("l"), one, 7) == lock_path(Path("l"), other, 7)


@pytest.mark.parametrize("other", [
    "http://127.0.0.1:8766", "https://127.0.0.1:8765", "http://api.example.com:8765",
    "sandbox"], ids=["other-port", "other-scheme", "other-host", "sandbox"])
def test_other_servers_do_not_share_a_lock(other: str) -> None:
    assert lock_path(Path("l"), API, 7) != lock_path(Path("l"), other, 7)


def test_an_apply_to_localhost_waits_for_one_to_127_0_0_1(ws: Workspace) -> None:
    """The workspace's emulator is at http://127.0.0.1:PORT; another run holds the project's
    lock through http://localhost:PORT/, the same server."""
    ws.declare_pruned("[{name: Onboarding}]")
    port = ws.env["CUSTOMGPT_BASE_URL"].rsplit(":", 1)[1]
    held = lock_path(ws.path / ".reconciler" / "locks", f"http://localhost:{port}/", PROJECT)
    with held_by_another(held, b'{"pid": 4242, "command": "apply"}'):
        result = ws.apply()
    assert result.code == 1
    assert f"project {PROJECT} is being changed by another run (pid 4242" in result.err
    assert ws.names() == []


@pytest.mark.parametrize("command", ["apply", "restore", "apply-dry-run"])
def test_a_project_being_changed_by_another_run_is_left_alone(
    ws: Workspace, command: str
) -> None:
    _, backup = deleted_with_backup(ws, "a")
    declare_conversations(ws, "[{name: Planned}]")
    lock = lock_path(ws.path / ".reconciler" / "locks", ws.emulator.base_url, PROJECT)
    with held_by_another(lock, b'{"pid": 4242, "host": "elsewhere", "command": "apply"}'):
        result = {
            "apply": lambda: ws.apply(),
            "restore": lambda: ws.run("restore", str(backup)),
            "apply-dry-run": lambda: ws.apply("--dry-run"),
        }[command]()
    if command == "apply-dry-run":
        assert result.code == 0, result.err  # a dry run changes nothing: it needs no lock
    else:
        assert result.code == 1
        assert f"project {PROJECT} is being changed by another run (pid 4242 on elsewhere " \
               "running apply; lock file .reconciler/locks/" in result.err
    assert ws.names() == []
