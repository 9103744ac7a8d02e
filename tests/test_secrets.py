"""The API key and the plan key never appear, whatever their source (the environment,
--api-key-file, --plan-key-file, the sandbox) and wherever a user puts one by mistake (in a URL,
in any option's value, as a path or a positional, instead of a key file's name, in a variable of
the desired state): not on stdout or stderr at any verbosity, not in any file, not as a file's
name."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from reconciler.api.live import Conversation, Transcript
from reconciler.apply.backup import write_backup
from reconciler.cli.main import main
from reconciler.emulator import DEFAULT_API_KEY, Emulator, FaultRule
from tests.workspace import PROJECT, Run, Workspace

TOKEN = "sk-live-4f9a8b7c6d5e4f3a2b1c"  # never in any environment the tests give below


def run(*args: str, env: dict[str, str]) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), env=env, stdout=out, stderr=err, stdin=io.StringIO())
    return Run(code, out.getvalue(), err.getvalue())


def _desired(path: Path, name: str = "Onboarding") -> Path:
    file = path / "c.yaml"
    file.write_text(f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n"
                    f"      - name: \"{name}\"\n")
    return file


def _backup(path: Path) -> Path:
    conversation = Conversation(id=1, session_id="7f0c8a9e-1b2c-4d3e-8f40-5a6b7c8d9e0f",
                                name="Onboarding", project_id=PROJECT, created_by="1",
                                created_at="", updated_at="")
    return write_backup(path / "backups", PROJECT,
                        Transcript(conversation=conversation, messages=()))


@pytest.mark.parametrize(
    "url",
    [f"http://user:{TOKEN}@127.0.0.1:notaport", f"https://{TOKEN}@api.example.com",
     f"https://api.example.com/?key={TOKEN}", f"http://[{TOKEN}", f"{TOKEN}:443",
     f"https://api.example.com/#{TOKEN}", f"http://{TOKEN}.example.com",
     f"https://api.example.com/ {TOKEN}"],
    ids=["userinfo-bad-port", "userinfo", "query", "bad-bracket", "no-scheme", "fragment",
         "plain-http-host", "space"],
)
@pytest.mark.parametrize("source", ["flag", "environment"])
def test_a_base_url_holding_the_key_is_refused_without_showing_it(
    tmp_path: Path, url: str, source: str
) -> None:
    env = {"CUSTOMGPT_API_KEY": "another-key-0123456789"}
    flags = ["--base-url", url] if source == "flag" else []
    if source == "environment":
        env["CUSTOMGPT_BASE_URL"] = url
    result = run("plan", "-f", str(_desired(tmp_path)), *flags, env=env)
    assert result.code == 1
    assert "the base URL (--base-url or $CUSTOMGPT_BASE_URL)" in result.err
    assert TOKEN not in result.out + result.err


@pytest.mark.parametrize(
    "args",
    [["plan", "--apikey", TOKEN], ["plan", "--format", TOKEN], ["plan", "--parallelism", TOKEN],
     ["export", "--project", TOKEN], ["plan", "--max-deletes", TOKEN], ["plan", TOKEN],
     ["plan", f"--token={TOKEN}"], ["plan", "--timeout", TOKEN], ["plan", f"--timeout={TOKEN}"],
     ["emulator", "--port", TOKEN]],
    ids=["unknown-flag", "bad-choice", "bad-number", "bad-project", "bad-count", "stray-value",
         "unknown-flag-with-value", "bad-seconds", "bad-seconds-with-equals", "bad-port"],
)
def test_a_key_typed_into_the_wrong_flag_is_not_echoed(tmp_path: Path, args: list[str]) -> None:
    result = run(*args, "-f", str(_desired(tmp_path)), env={})
    assert result.code == 1
    if args == ["plan", TOKEN]:  # read as a desired-state PATH, one that looks like a key
        assert "a PATH given does not exist, and looks like a key" in result.err
    else:
        assert "usage: reconciler" in result.err
    assert TOKEN not in result.out + result.err


@pytest.mark.parametrize("command", ["validate", "plan", "apply", "check", "test"])
def test_a_key_typed_where_a_path_goes_is_not_echoed(tmp_path: Path, command: str) -> None:
    result = run(command, TOKEN, env={})
    assert result.code == 1
    assert "looks like a key or a token rather than a file name" in result.err
    assert TOKEN not in result.out + result.err


# Every option that reads a secret from a file, on every command that takes it: a key typed
# there instead of a file name is a value the run cannot know is a key, so it is never repeated.
KEY_FILE_OPTIONS = {
    "plan --api-key-file": ["plan", "-f", "{desired}", "--api-key-file", TOKEN],
    "apply --api-key-file": ["apply", "-f", "{desired}", "--auto-approve", "--api-key-file", TOKEN],
    "export --api-key-file": ["export", "--project", "7", "--api-key-file", TOKEN],
    "restore --api-key-file": ["restore", "{backup}", "--api-key-file", TOKEN],
    "check --api-key-file": ["check", "{desired}", "--api-key-file", TOKEN],
    "test --api-key-file": ["test", "{desired}", "--api-key-file", TOKEN],
    "emulator --api-key-file": ["emulator", "--port", "0", "--api-key-file", TOKEN],
    "plan --plan-key-file": ["plan", "-f", "{desired}", "--out", "{plan}", "--plan-key-file",
                             TOKEN],
    "apply --plan-key-file": ["apply", "--plan", "{plan}", "--plan-key-file", TOKEN],
    "apply --plan-key-file=": ["apply", "--plan", "{plan}", f"--plan-key-file={TOKEN}"],
}


def shows_part_of(text: str, secret: str, *, part: int = 12) -> bool:
    """Whether `text` holds any `part` characters of `secret` in a row (a key cut short is
    still shown)."""
    return any(secret[i : i + part] in text for i in range(len(secret) - part + 1))


def files_holding(root: Path, secret: str, *, besides: tuple[Path, ...] = ()) -> list[Path]:
    """Every file under `root` whose name or content holds `secret` (`besides` excepted)."""
    return [path for path in root.rglob("*") if path not in besides and (
        secret in path.name or (path.is_file() and secret.encode() in path.read_bytes()))]


@pytest.mark.parametrize("verbosity", ["-q", "-v", "-vv"])
@pytest.mark.parametrize("args", list(KEY_FILE_OPTIONS.values()), ids=list(KEY_FILE_OPTIONS))
def test_a_key_typed_instead_of_a_key_file_name_is_not_echoed(
    tmp_path: Path, emulator: Emulator, args: list[str], verbosity: str
) -> None:
    places = {"desired": str(_desired(tmp_path)), "plan": str(tmp_path / "plan.json"),
              "backup": str(_backup(tmp_path))}
    env = {"CUSTOMGPT_BASE_URL": emulator.base_url}
    with contextlib.chdir(tmp_path):
        result = run(*(arg.format(**places) for arg in args), verbosity, env=env)
    option = next(arg for arg in args if "key-file" in arg).partition("=")[0]
    assert result.code == 1
    assert (f"error: cannot read the file given with {option}: no such file or directory"
            in result.err)
    assert TOKEN not in result.out + result.err
    assert files_holding(tmp_path, TOKEN) == []
    assert sum(emulator.stats()["requests"].values()) == 0


# Where a secret the run knows can be typed by mistake: as any option's value, as a path, as a
# positional. `{S}` is the secret.
PLACES = {
    "-f": ["plan", "-f", "{S}"],
    "--out": ["plan", "-f", "{desired}", "--out", "{S}"],
    "--out=": ["plan", "-f", "{desired}", "--out={S}"],
    "--out-directory": ["plan", "-f", "{desired}", "--out", "plans/{S}/plan.json"],
    "--plan": ["apply", "--plan", "{S}"],
    "--report": ["apply", "-f", "{desired}", "--auto-approve", "--report", "{S}"],
    "--backup-dir": ["apply", "-f", "{desired}", "--auto-approve", "--backup-dir", "{S}"],
    "-o": ["export", "--project", "7", "-o", "{S}"],
    "--base-url": ["plan", "-f", "{desired}", "--base-url", "https://{S}.example.com"],
    "show FILE": ["show", "{S}"],
    "restore BACKUP_FILE": ["restore", "{S}"],
    "validate PATH": ["validate", "{S}"],
    "stray": ["plan", "-f", "{desired}", "{S}"],
    "--api-key-file": ["plan", "-f", "{desired}", "--api-key-file", "{S}"],
    "--plan-key-file": ["plan", "-f", "{desired}", "--out", "{plan}", "--plan-key-file", "{S}"],
    "--format": ["plan", "-f", "{desired}", "--format", "{S}"],
    "--timeout": ["plan", "-f", "{desired}", "--timeout", "{S}"],
    "ambiguous-option": ["plan", "-f", "{desired}", "--p={S}"],
    "emulator --host": ["emulator", "--host", "{S}"],
}
PLAN_KEY = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # openssl rand
# Where the run learns the secret: (its value, environment, options, the key file it reads).
SOURCES = {
    "$CUSTOMGPT_API_KEY": (TOKEN, {"CUSTOMGPT_API_KEY": TOKEN}, []),
    "--api-key-file": (TOKEN, {}, ["--api-key-file", "{keyfile}"]),
    "$RECONCILER_PLAN_KEY": (PLAN_KEY, {"RECONCILER_PLAN_KEY": PLAN_KEY}, []),
    "--plan-key-file": (PLAN_KEY, {}, ["--plan-key-file", "{keyfile}"]),
}


@pytest.mark.parametrize("verbosity", ["-v", "-vv"])
@pytest.mark.parametrize("source", list(SOURCES))
@pytest.mark.parametrize("place", list(PLACES))
def test_a_known_secret_typed_anywhere_is_never_shown_nor_written(
    tmp_path: Path, emulator: Emulator, place: str, source: str, verbosity: str
) -> None:
    if place == source:
        pytest.skip("the option that gives the secret cannot also be given the secret")
    secret, env, options = SOURCES[source]
    key_file = tmp_path / "secret.key"
    key_file.write_text(secret + "\n")
    values = {"S": secret, "desired": str(_desired(tmp_path)), "keyfile": str(key_file),
              "plan": str(tmp_path / "plan.json")}
    args = [arg.format(**values) for arg in [*PLACES[place], *options, verbosity]]
    with contextlib.chdir(tmp_path):
        result = run(*args, env={**env, "CUSTOMGPT_BASE_URL": emulator.base_url})
    assert result.code == 1
    assert not shows_part_of(result.out + result.err, secret)
    assert "Traceback" not in result.err
    assert files_holding(tmp_path, secret, besides=(key_file,)) == []
    assert sum(emulator.stats()["requests"].values()) == 0


def test_a_known_secret_in_a_value_is_refused_before_anything_is_done(
    ws: Workspace
) -> None:
    key = ws.env["CUSTOMGPT_API_KEY"]
    result = ws.run("plan", "-f", str(ws.file), "--out", f"{key}.json")
    assert result.code == 1
    assert result.err == (
        "error: a value on the command line holds the API key or the plan key, where neither "
        "belongs (it would be shown, or become a file's name): nothing was done. Give the API "
        "key with $CUSTOMGPT_API_KEY or --api-key-file FILE, the plan key with "
        "$RECONCILER_PLAN_KEY or --plan-key-file FILE\n")
    assert list(ws.path.iterdir()) == []
    assert sum(ws.emulator.stats()["requests"].values()) == 0


def test_the_emulator_may_be_given_the_key_it_serves(tmp_path: Path) -> None:
    """`reconciler emulator --api-key $CUSTOMGPT_API_KEY` is the one place the key is a value
    (this run fails later, on its port, without showing the key)."""
    result = run("emulator", "--api-key", TOKEN, "--port", "99999",
                 env={"CUSTOMGPT_API_KEY": TOKEN})
    assert result.code == 1
    assert "argument --port" in result.err
    assert TOKEN not in result.out + result.err


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_variable_holding_the_key_from_a_key_file_is_refused(
    ws: Workspace, command: str
) -> None:
    key_file = ws.path / "key"
    key_file.write_text(ws.env["CUSTOMGPT_API_KEY"] + "\n")
    env = {"CUSTOMGPT_BASE_URL": ws.env["CUSTOMGPT_BASE_URL"],
           "MY_TOKEN": ws.env["CUSTOMGPT_API_KEY"]}
    file = _desired(ws.path, "${MY_TOKEN}")
    result = run(command, "-f", str(file), "--api-key-file", str(key_file), env=env)
    assert result.code == 1
    assert f"error: {file}:5:15: ${{MY_TOKEN}} holds the API key" in result.err
    assert ws.env["CUSTOMGPT_API_KEY"] not in result.out + result.err
    assert sum(ws.emulator.stats()["requests"].values()) == 0


@pytest.mark.parametrize(
    "value", ["prefix ${MY_TOKEN} suffix", "${UNSET:-KEY}", "literal KEY in a name"],
    ids=["inside-text", "in-a-default", "literal"])
def test_the_key_inside_any_value_is_refused(ws: Workspace, value: str) -> None:
    key = ws.env["CUSTOMGPT_API_KEY"]
    ws.env["MY_TOKEN"] = key
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            label: ok
            conversations:
              - name: "{value.replace("KEY", key)}"
    """)
    result = ws.plan()
    assert result.code == 1
    assert "holds the API key, which must not be written into desired state" in result.err
    assert key not in result.out + result.err
    assert ws.names() == []


def test_the_sandbox_key_is_refused_in_sandbox_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("plan", "--sandbox", "-f", str(_desired(tmp_path, "${SANDBOX_KEY}")),
                 env={"SANDBOX_KEY": DEFAULT_API_KEY})
    assert result.code == 1
    assert "${SANDBOX_KEY} holds the API key" in result.err
    assert not (tmp_path / ".reconciler").exists()


SECRET = "sk-RECOGNISABLE-0123456789abcdef"


def test_the_token_never_appears_anywhere(tmp_path: Path) -> None:
    """Every command at the highest verbosity, with failures forced; grep every byte written."""
    with Emulator(api_key=SECRET, enable_admin=True) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        work = tmp_path / "work"
        work.mkdir()
        ws = Workspace(work, {"CUSTOMGPT_API_KEY": SECRET,
                              "CUSTOMGPT_BASE_URL": emulator.base_url}, emulator)
        outputs = _run_everything(ws, key_file=tmp_path / "key")
    written = [p.read_bytes() for p in work.rglob("*") if p.is_file()]
    assert len(written) >= 14  # the desired state, a plan, a report, a backup, answer checks
    assert all(SECRET not in text for text in outputs)
    assert all(SECRET.encode() not in data for data in written)
    assert any("GET /api/v1/" in text for text in outputs), "-vv logs every request"


def _run_everything(ws: Workspace, *, key_file: Path) -> list[str]:
    key_file.write_text(SECRET + "\n")
    doomed = ws.seed("Doomed")
    ws.emulator.add_message(PROJECT, doomed, "hello")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            owns: [Doomed]
            conversations: [{{name: A, messages: [hi]}}, {{name: B}}]
    """)
    saved = ws.path / "plan.json"
    ws.emulator.faults.rules = [
        FaultRule(method="POST", path="/conversations$", status=503, mode="fail", times=2),
        FaultRule(method="GET", path="/messages", status=500, mode="fail", times=1),
    ]
    allow = "--allow-mass-delete"  # the delete is of the only conversation it owns
    runs = [
        ws.run("plan", "-vv", "-f", str(ws.file), "--out", str(saved), "--format", "json", allow),
        ws.run("plan", "-vv", "-f", str(ws.file), "--format", "markdown", allow),
        ws.run("show", "-vv", str(saved)),
        ws.run("apply", "-vv", "-f", str(ws.file), "--auto-approve", "--report",
               str(ws.path / "report.json"), "--backup-dir", str(ws.path / "backups"), allow),
        ws.run("plan", "-vv", "-f", str(ws.file), "--api-key-file", str(key_file)),
    ]
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            conversations:
              - {{name: A, messages: [{{prompt: hi, expect: {{contains: [nowhere]}}}}]}}
    """)
    for command in ("check", "test"):  # answer checks, every format written
        runs.append(ws.run(command, "-vv", str(ws.file), "--format", "json", "--out",
                           str(ws.path / f"{command}.json"), *(
                               arg for fmt in ("junit", "html", "markdown", "text")
                               for arg in ("--write", fmt, str(ws.path / f"{command}.{fmt}")))))
    ws.declare("version: 1\nprojects: [{id: 999999}]\n")
    runs.append(ws.run("plan", "-vv", "-f", str(ws.file)))
    ws.env["CUSTOMGPT_API_KEY"] = SECRET + "-wrong"
    runs.append(ws.run("plan", "-vv", "-f", str(ws.file)))
    runs.append(ws.run("test", "-vv", "-f", str(ws.file)))
    assert [r.code for r in runs] == [0, 0, 0, 0, 0, 3, 3, 1, 1, 1]
    return [text for r in runs for text in (r.out, r.err)]
