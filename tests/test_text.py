"""Names and prompts in one normal form (NFC, no surrounding whitespace), and invisible
differences made visible: in validation, in plans, in matching."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.text import (
    normal_form,
    shown,
    skeleton,
    terminal_safe,
    why_not_normal,
)
from tests.workspace import PROJECT, Workspace

NFC = "Caf\u00e9"
NFD = "Cafe\u0301"


@pytest.mark.parametrize(("text", "normal"), [
    (NFD, NFC), (f"  {NFC}\n", NFC), ("How do I start?\n", "How do I start?"),
    ("a  b", "a  b"), ("\u200bx", "\u200bx"),
], ids=["nfd", "padded", "yaml-block", "inner-spaces-kept", "zero-width-kept"])
def test_normal_form(text: str, normal: str) -> None:
    assert normal_form(text) == normal
    assert unicodedata.is_normalized("NFC", normal_form(text))


# ASCII (every control and whitespace character among it), Unicode spaces and line separators,
# combining marks, precomposed letters, format characters and the compatibility forms.
_TEXT = st.text(st.one_of(
    st.characters(max_codepoint=0x7F),
    st.sampled_from("\u00a0\u0085\u1680\u2000\u2028\u2029\u3000\u0301\u0308\u00e9\u212a"
                    "\u200b\u200d\u202e\ufeff\ufb01\uff21"),
    st.characters(),
), max_size=12)


@settings(max_examples=500, deadline=None)
@given(_TEXT)
def test_normal_form_is_nfc_without_surrounding_whitespace_for_any_text(text: str) -> None:
    assert normal_form(text) == unicodedata.normalize("NFC", text).strip()


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12))
def test_printable_ascii_looks_like_itself_with_a_zero_width_space(text: str) -> None:
    # The zero-width space takes the Unicode path; the ASCII text alone does not.
    assert skeleton(text) == skeleton(text + "\u200b") == " ".join(text.split())


@settings(max_examples=500, deadline=None)
@given(st.text(st.one_of(st.characters(max_codepoint=0xA0), st.sampled_from("\n\t\r\x1b\x9b")),
               max_size=20))
def test_terminal_safe_escapes_every_control_character_but_newline_and_tab(text: str) -> None:
    controls = [ch for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\t"]
    safe = terminal_safe(text)
    assert not any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in safe)
    assert (safe == text) == (not controls)
    assert safe.count("\\u") == text.count("\\u") + len(controls)


@pytest.mark.parametrize(("text", "expected"), [
    (NFD, "'Cafe\\u0301'"), (NFC, "'Café'"), ("Bil\u200bling", "'Bil\\u200bling'"),
    ("a\u00a0b", "'a\\xa0b'"), ("it's", '"it\'s"'), ("नमस्ते", "'नमस्ते'"),
    ("ünïcödé 日本語 🚀", "'ünïcödé 日本語 🚀'"), ("rtl\u202eevil", "'rtl\\u202eevil'"),
], ids=["nfd", "nfc", "zero-width", "nbsp", "quote", "devanagari", "mixed", "bidi"])
def test_shown_escapes_only_what_cannot_be_seen(text: str, expected: str) -> None:
    assert shown(text) == expected


def test_texts_that_look_alike_share_a_skeleton() -> None:
    assert skeleton("Billing") == skeleton("Bil\u200bling") and skeleton(NFD) == skeleton(NFC)
    assert skeleton("a b") == skeleton("a\u00a0b")
    assert skeleton("Billing") != skeleton("billing") and skeleton(NFC) != skeleton("Cafe")
    assert why_not_normal(f" {NFD}") == "surrounding whitespace and Unicode normalisation (not NFC)"


def test_names_equal_in_normal_form_are_declared_twice(ws: Workspace) -> None:
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            conversations:
              - name: "Caf\\u00e9"
              - name: "Cafe\\u0301"
    """)
    result = ws.run("validate", "-f", str(ws.file))
    assert result.code == 1
    assert "conversation 'Café' is declared twice" in result.err
    assert "written 'Café' and 'Cafe\\u0301', they differ only in Unicode normalisation" \
        in result.err


def test_validate_warns_where_a_value_would_not_survive_the_server(ws: Workspace) -> None:
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            conversations:
              - name: " Billing"
                renamed_from: ["Cafe\\u0301"]
                messages:
                  - |
                    How do I start?
                  - Fine as it is
    """)
    result = ws.run("validate", "-f", str(ws.file))
    assert result.code == 0, result.err
    lines = [line for line in result.err.splitlines() if "warning:" in line]
    assert len(lines) == 3
    assert ":6:" in lines[0] and "name ' Billing' has surrounding whitespace" in lines[0]
    assert "sends and compares it as 'Billing'" in lines[0]
    assert "renamed_from name 'Cafe\\u0301' has Unicode normalisation" in lines[1]
    assert "message 'How do I start?\\n' has surrounding whitespace" in lines[2]


def test_a_padded_declaration_matches_and_sends_its_normal_form(ws: Workspace) -> None:
    session = ws.seed(NFD)
    ws.emulator.add_message(PROJECT, session, "How do I start?")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            conversations:
              - name: " Caf\\u00e9 "
                messages:
                  - |
                    How do I start?
                  - "  And then?  "
    """)
    planned = ws.plan()
    assert "Plan: 0 to create, 0 to rename, 1 to send, 0 to react, 0 to delete." in planned.out
    assert "> send   'Café' message 2: 'And then?'" in planned.out
    assert ws.apply().code == 0
    prompts = [m["user_query"] for m in ws.emulator.messages(PROJECT, session)]
    assert prompts == ["How do I start?", "And then?"]
    assert ws.plan("--detailed-exitcode").code == 0


def test_a_plan_shows_invisible_differences(ws: Workspace) -> None:
    ws.seed("Bil\u200bling")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            conversations:
              - name: Billing
    """)
    planned = ws.plan()
    assert "+ create 'Billing'" in planned.out
    assert "- delete 'Bil\\u200bling'" in planned.out
    assert "'Billing' and 'Bil\\u200bling' look alike but differ in invisible characters" \
        in planned.out + planned.err


def test_protect_and_ignore_patterns_match_a_live_name_in_normal_form(ws: Workspace) -> None:
    guarded = ws.seed(" Legal hold\n")
    ignored = ws.seed("tmp-e\u0301")
    stray = ws.seed("Stray")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            protect: ["Legal *"]
            ignore: ["tmp-\u00e9"]
            conversations: []
    """)
    assert ws.apply("--allow-mass-delete").code == 0
    live = {c["session_id"] for c in ws.emulator.conversations(PROJECT)}
    assert guarded in live and ignored in live and stray not in live


def test_a_long_value_is_warned_about_briefly_with_its_ends_visible(ws: Workspace) -> None:
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            conversations:
              - name: Long
                messages: ["{"a" * 5000}\\t"]
    """)
    result = ws.run("validate", "-f", str(ws.file))
    assert result.code == 0 and len(result.err) < 400
    assert "'" + "a" * 19 + "\\t' has surrounding whitespace" in result.err


def test_validate_warns_about_characters_a_reader_cannot_see(ws: Workspace) -> None:
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            conversations:
              - name: "Bil\\u200bling"
              - name: "Plain"
                messages: ["line one\\nline two", "tab\\tinside"]
    """)
    result = ws.run("validate", "-f", str(ws.file))
    assert result.code == 0
    warnings = [line for line in result.err.splitlines() if "warning:" in line]
    assert len(warnings) == 1
    assert "name 'Bil\\u200bling' holds characters a reader cannot see" in warnings[0]
