"""Keyed plan signatures: what they accept, what they refuse, and a key that never shows."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from reconciler.api.settings import Secret
from reconciler.errors import InputError
from reconciler.jsonio import canonical
from reconciler.plan.signing import check_signature, read_plan_key, sign
from tests.saved_plans import PLAN_KEY, applies, declare_conversations, saved_plan
from tests.workspace import Workspace

KEY = Secret("k" * 32)
DOCUMENT = {"format_version": 2, "api": "sandbox", "projects": [], "checksum": "sha256:00"}


def signed(document: dict[str, object], key: Secret = KEY) -> dict[str, object]:
    return {**document, "signature": sign(document, key)}


def test_a_signature_covers_the_content_but_not_the_checksum() -> None:
    signature = sign(DOCUMENT, KEY)
    assert signature.startswith("hmac-sha256:") and len(signature) == len("hmac-sha256:") + 64
    assert sign({**DOCUMENT, "checksum": "sha256:ff"}, KEY) == signature
    assert sign({**DOCUMENT, "api": "elsewhere"}, KEY) != signature
    assert sign(DOCUMENT, Secret("o" * 32)) != signature
    assert KEY.reveal() not in signature


@pytest.mark.parametrize(
    ("document", "key", "refusal"),
    [
        (signed(DOCUMENT), KEY, None),
        (DOCUMENT, None, None),
        (DOCUMENT, KEY, "is not signed, but a plan key was given"),
        (signed(DOCUMENT), None, "is signed, but no plan key was given"),
        (signed(DOCUMENT, Secret("o" * 32)), KEY, "the signature does not match the plan key"),
        ({**signed(DOCUMENT), "api": "elsewhere"}, KEY, "the signature does not match"),
    ],
    ids=["signed", "neither", "unsigned", "no-key", "other-key", "edited"],
)
def test_check_signature(document: dict[str, object], key: Secret | None,
                         refusal: str | None) -> None:
    if refusal is None:
        check_signature(document, key, source="plan.json")
        return
    with pytest.raises(InputError, match=refusal) as error:
        check_signature(document, key, source="plan.json")
    assert "plan.json" in str(error.value)
    assert KEY.reveal() not in str(error.value)


def test_the_key_comes_from_its_file_before_the_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "plan.key"
    key_file.write_text("f" * 20 + "\n")
    env = {"RECONCILER_PLAN_KEY": "e" * 20}
    assert read_plan_key(env, str(key_file)) == Secret("f" * 20)
    assert read_plan_key(env, None) == Secret("e" * 20)
    assert read_plan_key({}, None) is None


@pytest.mark.parametrize("value", ["", "   ", "short-key"], ids=["empty", "blank", "short"])
def test_a_weak_key_is_refused_without_showing_it(value: str) -> None:
    with pytest.raises(InputError, match="at least 16 characters") as error:
        read_plan_key({"RECONCILER_PLAN_KEY": value}, None)
    assert "$RECONCILER_PLAN_KEY" in str(error.value)
    if value.strip():
        assert value not in str(error.value)


def test_an_unreadable_key_file_is_named_by_its_option_not_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "absent.key"
    with pytest.raises(InputError) as error:
        read_plan_key({}, str(missing))
    assert str(error.value) == ("cannot read the file given with --plan-key-file: no such file "
                                "or directory")


def _edit_with_a_new_checksum(saved: Path) -> None:
    """What a deliberate edit looks like: change an operation, compute the checksum again."""
    document = json.loads(saved.read_text())
    document["projects"][0]["operations"][0]["name"] = "Injected"
    body = {k: v for k, v in document.items() if k not in ("checksum", "signature")}
    document["checksum"] = "sha256:" + hashlib.sha256(canonical(body)).hexdigest()
    saved.write_text(json.dumps(document))


def test_the_checksum_does_not_stop_a_deliberate_edit_without_a_plan_key(ws: Workspace) -> None:
    """The documented limit of the unkeyed checksum."""
    declare_conversations(ws, "[{name: Planned}]")
    saved = saved_plan(ws)
    _edit_with_a_new_checksum(saved)
    applies(ws, saved)
    assert ws.names() == ["Injected"]


def test_a_signed_plan_edited_with_a_new_checksum_is_refused(ws: Workspace) -> None:
    ws.env["RECONCILER_PLAN_KEY"] = PLAN_KEY
    declare_conversations(ws, "[{name: Planned}]")
    saved = saved_plan(ws)
    assert json.loads(saved.read_text())["signature"].startswith("hmac-sha256:")
    _edit_with_a_new_checksum(saved)
    result = ws.run("apply", "--plan", str(saved), "--auto-approve")
    assert result.code == 1
    assert "the signature does not match the plan key" in result.err
    assert ws.names() == []


def test_a_signed_plan_applies_with_its_key_only(ws: Workspace) -> None:
    key_file = ws.path / "plan.key"
    key_file.write_text(PLAN_KEY + "\n")
    declare_conversations(ws, "[{name: Planned}]")
    unsigned = saved_plan(ws)
    signed = ws.path / "signed.json"
    made = ws.plan("-vv", "--out", str(signed), "--plan-key-file", str(key_file))
    assert made.code == 0
    runs = [
        ws.run("apply", "--plan", str(unsigned), "--auto-approve",
               "--plan-key-file", str(key_file)),
        ws.run("apply", "--plan", str(signed), "--auto-approve"),
        ws.run("apply", "-vv", "--plan", str(signed), "--auto-approve",
               "--plan-key-file", str(key_file)),
    ]
    assert [r.code for r in runs] == [1, 1, 0]
    assert "is not signed, but a plan key was given" in runs[0].err
    assert "is signed, but no plan key was given" in runs[1].err
    assert ws.names() == ["Planned"]
    written = [signed.read_text(), unsigned.read_text()]
    shown = [text for r in [made, *runs] for text in (r.out, r.err)]
    assert all(PLAN_KEY not in text for text in written + shown)


@pytest.mark.parametrize(
    ("command", "needs"),
    [(("plan",), "it needs --out FILE"), (("apply", "--auto-approve"), "it needs --plan FILE")],
    ids=["plan-without-out", "apply-without-plan"],
)
def test_a_plan_key_file_where_it_has_no_use_is_refused(
    ws: Workspace, command: tuple[str, ...], needs: str
) -> None:
    key_file = ws.path / "plan.key"
    key_file.write_text(PLAN_KEY)
    declare_conversations(ws, "[{name: Planned}]")
    result = ws.run(*command, "-f", str(ws.file), "--plan-key-file", str(key_file))
    assert result.code == 1
    assert needs in result.err
    assert ws.names() == []


def test_a_weak_plan_key_is_refused_before_planning(ws: Workspace) -> None:
    ws.env["RECONCILER_PLAN_KEY"] = "short"
    declare_conversations(ws, "[{name: Planned}]")
    saved = ws.path / "plan.json"
    result = ws.plan("--out", str(saved))
    assert result.code == 1
    assert "$RECONCILER_PLAN_KEY: a plan key must be at least 16 characters" in result.err
    assert "short" not in result.out + result.err
    assert not saved.exists()
    assert result.out == ""


@pytest.mark.parametrize("variable", ["RECONCILER_PLAN_KEY", "COPY_OF_IT"])
def test_the_plan_key_never_goes_into_desired_state_or_output(
    ws: Workspace, variable: str
) -> None:
    ws.env.update(RECONCILER_PLAN_KEY=PLAN_KEY, COPY_OF_IT=PLAN_KEY)
    declare_conversations(ws, f'[{{name: "${{{variable}}}"}}]')
    ws.seed(f"live {PLAN_KEY}")  # a name from the API that happens to hold it
    runs = [ws.run("validate", str(ws.file)), ws.plan("-v")]
    assert [r.code for r in runs] == [1, 1]
    assert "holds the API key, which must not be" in runs[0].err
    assert all(PLAN_KEY not in r.out + r.err for r in runs)
    declare_conversations(ws, "[]")
    listed = ws.plan("-v")
    assert listed.code == 0
    assert "live ********" in listed.out and PLAN_KEY not in listed.out
