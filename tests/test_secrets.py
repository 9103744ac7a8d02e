"""The API key never appears, whatever its source (the environment, --api-key-file, the
sandbox) and wherever a user puts it by mistake (in a URL, in a flag's value, in a variable
of the desired state)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.emulator import DEFAULT_API_KEY
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
    assert "usage: reconciler" in result.err
    assert TOKEN not in result.out + result.err


def test_a_key_given_as_the_key_file_name_is_not_echoed(tmp_path: Path) -> None:
    result = run("plan", "-f", str(_desired(tmp_path)), "--api-key-file", TOKEN, env={})
    assert result.code == 1
    assert "cannot read the file given with --api-key-file: no such file" in result.err
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

