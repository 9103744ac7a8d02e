"""Keyed plan signatures: what they accept, what they refuse, and a key that never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.api.settings import Secret
from reconciler.errors import InputError
from reconciler.plan.signing import check_signature, read_plan_key, sign

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
