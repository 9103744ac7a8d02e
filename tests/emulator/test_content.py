"""Answers from a project's own documents (`--content DIR`), over real sockets: an answer is
the passage that matches the prompt and cites its file; an edit shows in the next answer; no
match says the project's "I don't know" message; citation ids are integers that resolve; hostile
files are skipped, never followed out of the directory, never hang the emulator.

`citations` (integer ids), `GET /api/v1/projects/{projectId}/citations/{citationId}` (the
`PageMetadata`: id, url, title, description, image; 404 "Page with id N not found") and the
`no_answer_message` setting (default "I'm sorry, I don't know the answer", at most 1,000
characters) are those of the vendor's OpenAPI document of 2025.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.cli.main import main
from reconciler.cli.sandbox import start_sandbox
from reconciler.emulator import Emulator, EmulatorError, Variants
from reconciler.emulator.content import MAX_DOCUMENTS, MAX_FILE_BYTES, document_id, terms
from tests.conftest import TEST_API_KEY

PROJECT = 1001
CONV = f"/api/v1/projects/{PROJECT}/conversations"
SETTINGS = f"/api/v1/projects/{PROJECT}/settings"
CITATIONS = f"/api/v1/projects/{PROJECT}/citations"
DEFAULT_NO_ANSWER = "I'm sorry, I don't know the answer"

REFUNDS = """# Refund policy

Refunds are issued within 30 days of purchase,
to the card that paid.

## Exceptions

Gift cards cannot be refunded.
"""
SHIPPING = """Shipping takes 2 to 5 working days inside the EU.

Parcels to Norway and Switzerland go through customs.
"""
REFUND_PASSAGE = "Refunds are issued within 30 days of purchase, to the card that paid."


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A content directory: project 1001 has refunds.md and guides/shipping.txt."""
    root = tmp_path / "content"
    (root / str(PROJECT) / "guides").mkdir(parents=True)
    (root / str(PROJECT) / "refunds.md").write_text(REFUNDS, encoding="utf-8")
    (root / str(PROJECT) / "guides" / "shipping.txt").write_text(SHIPPING, encoding="utf-8")
    return root


@pytest.fixture
def served(library: Path) -> Iterator[Emulator]:
    with Emulator(api_key=TEST_API_KEY, enable_admin=True, content=library) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT, "shop-bot")
        yield emulator


@pytest.fixture
def client(served: Emulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {served.api_key}"}
    with httpx.Client(base_url=served.base_url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def session(client: httpx.Client) -> str:
    created = client.post(CONV, json={"name": "Questions"})
    assert created.status_code == 201, created.text
    return str(created.json()["data"]["session_id"])


def ask(client: httpx.Client, session: str, prompt: str) -> dict[str, Any]:
    sent = client.post(f"{CONV}/{session}/messages", json={"prompt": prompt})
    assert sent.status_code == 200, sent.text
    message: dict[str, Any] = sent.json()["data"]
    return message


def cited(client: httpx.Client, citation: object) -> dict[str, Any]:
    found = client.get(f"{CITATIONS}/{citation}")
    assert found.status_code == 200, found.text
    data: dict[str, Any] = found.json()["data"]
    return data


# Answers and citations ---------------------------------------------------------------------


def test_an_answer_is_the_matching_passage_and_cites_its_document(
    client: httpx.Client, session: str
) -> None:
    message = ask(client, session, "How long do I have to get a refund?")
    assert message["openai_response"] == REFUND_PASSAGE
    assert message["citations"] == [document_id(PROJECT, "refunds.md")]
    document = cited(client, message["citations"][0])
    assert document == {"id": message["citations"][0], "url": "refunds.md",
                        "title": "Refund policy", "description": REFUND_PASSAGE,
                        "image": None}


def test_a_heading_leads_to_the_paragraphs_under_it(client: httpx.Client, session: str) -> None:
    message = ask(client, session, "Are there exceptions?")
    assert message["openai_response"] == "Gift cards cannot be refunded."


def test_a_document_in_a_folder_is_named_by_its_path_and_titled_by_it(
    client: httpx.Client, session: str
) -> None:
    message = ask(client, session, "Do parcels to Switzerland pay customs?")
    assert message["openai_response"] == "Parcels to Norway and Switzerland go through customs."
    assert cited(client, message["citations"][0])["title"] == "guides/shipping.txt"


def test_a_prompt_two_passages_answer_together_cites_both(
    client: httpx.Client, session: str
) -> None:
    # Both share two words; the parcels' are rarer ("card" is also in "Gift cards ...").
    message = ask(client, session, "Refunds to the card, and parcels to Norway?")
    assert message["openai_response"] == (
        f"Parcels to Norway and Switzerland go through customs.\n\n{REFUND_PASSAGE}")
    assert message["citations"] == [document_id(PROJECT, "guides/shipping.txt"),
                                    document_id(PROJECT, "refunds.md")]


def test_the_listing_and_the_message_show_the_answer_and_its_citations(
    client: httpx.Client, session: str
) -> None:
    sent = ask(client, session, "refund within 30 days?")
    listed = client.get(f"{CONV}/{session}/messages").json()["data"]["messages"]["data"]
    one = client.get(f"{CONV}/{session}/messages/{sent['id']}").json()["data"]
    for shown in (listed[0], one):
        assert (shown["openai_response"], shown["citations"]) == (
            sent["openai_response"], sent["citations"])


def test_the_same_prompt_gets_the_same_answer(client: httpx.Client, session: str) -> None:
    answers = [ask(client, session, "shipping days inside the EU") for _ in range(3)]
    assert answers[0]["openai_response"] == "Shipping takes 2 to 5 working days inside the EU."
    assert all((answer["openai_response"], answer["citations"]) == (
        answers[0]["openai_response"], answers[0]["citations"]) for answer in answers)


def test_a_stream_finishes_with_the_integer_citations(client: httpx.Client, session: str) -> None:
    streamed = client.post(f"{CONV}/{session}/messages", params={"stream": 1},
                           json={"prompt": "refund policy"})
    events = [json.loads(line[5:]) for line in streamed.text.splitlines()
              if line.startswith("data:")]
    text = "".join(event.get("message", "") for event in events if event["status"] == "progress")
    assert text == REFUND_PASSAGE
    assert events[-1]["citations"] == [document_id(PROJECT, "refunds.md")]


@pytest.mark.parametrize(("wire", "shown"), [
    ("spec", lambda ids: ids),
    ("observed-2026", lambda ids: ids),
    ("observed-2023", lambda ids: [f"{i}.0" for i in ids]),
], ids=["spec", "observed-2026", "observed-2023"])
def test_each_wire_shows_the_documents_ids_not_made_up_ones(
    served: Emulator, client: httpx.Client, session: str, wire: str, shown: Any
) -> None:
    served.variants = Variants(wire=wire)
    refunds = document_id(PROJECT, "refunds.md")
    message = ask(client, session, "refund policy")
    assert message["citations"] == shown([refunds])
    assert all(type(c) is (str if wire == "observed-2023" else int)
               for c in message["citations"])
    unknown = ask(client, session, "What colour is the sky on Mars?")
    assert unknown["citations"] == []


def test_chat_completions_answer_from_content(client: httpx.Client) -> None:
    completion = client.post(f"/api/v1/projects/{PROJECT}/chat/completions",
                             json={"messages": [{"role": "user", "content": "refund policy"}]})
    assert completion.status_code == 200, completion.text
    assert completion.json()["choices"][0]["message"]["content"] == REFUND_PASSAGE


def test_seeded_messages_answer_from_content_too(served: Emulator) -> None:
    session = served.add_conversation(PROJECT, "Seeded")["session_id"]
    message = served.add_message(PROJECT, session, "refund policy")
    assert (message["openai_response"], message["citations"]) == (
        REFUND_PASSAGE, [document_id(PROJECT, "refunds.md")])


# Edits show in the next answer -------------------------------------------------------------


def test_an_edit_shows_in_the_next_answer_without_a_restart(
    library: Path, client: httpx.Client, session: str
) -> None:
    refunds = library / str(PROJECT) / "refunds.md"
    assert "30 days" in ask(client, session, "refund policy")["openai_response"]
    refunds.write_text(REFUNDS.replace("30 days", "14 days"), encoding="utf-8")  # same size
    message = ask(client, session, "refund policy")
    assert "14 days" in message["openai_response"] and "30" not in message["openai_response"]
    assert message["citations"] == [document_id(PROJECT, "refunds.md")]


def test_an_edit_with_the_old_times_still_shows(
    library: Path, client: httpx.Client, session: str
) -> None:
    refunds = library / str(PROJECT) / "refunds.md"
    before = refunds.stat()
    ask(client, session, "refund policy")
    refunds.write_text(REFUNDS.replace("30 days", "60 days"), encoding="utf-8")
    os.utime(refunds, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `cp -p` would
    assert "60 days" in ask(client, session, "refund policy")["openai_response"]


def test_a_new_file_answers_and_other_ids_stay(
    library: Path, client: httpx.Client, session: str
) -> None:
    before = ask(client, session, "refund policy")["citations"]
    (library / str(PROJECT) / "a-warranty.md").write_text(
        "# Warranty\n\nEvery laptop has a two-year warranty.\n", encoding="utf-8")
    warranty = ask(client, session, "laptop warranty")
    assert warranty["openai_response"] == "Every laptop has a two-year warranty."
    assert warranty["citations"] == [document_id(PROJECT, "a-warranty.md")]
    assert ask(client, session, "refund policy")["citations"] == before


def test_a_deleted_file_no_longer_answers_and_its_citation_is_gone(
    library: Path, client: httpx.Client, session: str
) -> None:
    citation = ask(client, session, "refund policy")["citations"][0]
    (library / str(PROJECT) / "refunds.md").unlink()
    assert ask(client, session, "refund policy")["openai_response"] == DEFAULT_NO_ANSWER
    gone = client.get(f"{CITATIONS}/{citation}")
    assert gone.status_code == 404
    assert gone.json()["data"]["message"] == f"Page with id {citation} not found"


def test_ids_are_the_same_after_a_restart(library: Path, session: str,
                                          client: httpx.Client) -> None:
    first = ask(client, session, "refund policy")["citations"]
    with Emulator(api_key=TEST_API_KEY, content=library) as again:
        again.start()
        again.ensure_project(PROJECT)
        conversation = again.add_conversation(PROJECT, "Again")["session_id"]
        assert again.add_message(PROJECT, conversation, "refund policy")["citations"] == first


# No match: the project's "I don't know" message --------------------------------------------


@pytest.mark.parametrize("prompt", [
    "What colour is the sky on Mars?",
    "What is it?",  # nothing but stop words
    "Tell me about it, please",
], ids=["unrelated", "stop-words", "request-words"])
def test_no_match_says_the_default_no_answer_message(
    client: httpx.Client, session: str, prompt: str
) -> None:
    message = ask(client, session, prompt)
    assert (message["openai_response"], message["citations"]) == (DEFAULT_NO_ANSWER, [])


def test_one_shared_word_of_many_is_not_a_match(client: httpx.Client, session: str) -> None:
    message = ask(client, session, "Which airline flies parcels to Japan overnight cheaply?")
    assert message["openai_response"] == DEFAULT_NO_ANSWER


def test_the_settings_show_the_no_answer_message_and_change_it(
    client: httpx.Client, session: str
) -> None:
    assert client.get(SETTINGS).json()["data"]["no_answer_message"] == DEFAULT_NO_ANSWER
    changed = client.post(SETTINGS, files={"no_answer_message": (None, "Ask support@shop.test")})
    assert changed.status_code == 200 and changed.json()["data"] == {"updated": True}
    assert client.get(SETTINGS).json()["data"]["no_answer_message"] == "Ask support@shop.test"
    assert ask(client, session, "Mars sky colour")["openai_response"] == "Ask support@shop.test"
    assert client.post(SETTINGS, json={"no_answer_message": None}).status_code == 200
    assert ask(client, session, "Mars sky colour")["openai_response"] == DEFAULT_NO_ANSWER


def test_settings_that_leave_the_message_out_keep_it(client: httpx.Client) -> None:
    client.post(SETTINGS, json={"no_answer_message": "Not in our documents."})
    client.post(SETTINGS, json={"conversation_retention_period": "never"})
    assert client.get(SETTINGS).json()["data"]["no_answer_message"] == "Not in our documents."


@pytest.mark.parametrize("body", [
    {"no_answer_message": "x" * 1001},
    {"no_answer_message": 42},
    {"no_answer_message": "fine", "conversation_retention_period": "month"},
], ids=["too-long", "not-text", "with-a-bad-retention"])
def test_a_bad_no_answer_message_is_refused_and_changes_nothing(
    client: httpx.Client, body: dict[str, Any]
) -> None:
    refused = client.post(SETTINGS, json=body)
    assert refused.status_code == 400
    data = client.get(SETTINGS).json()["data"]
    assert data["no_answer_message"] == DEFAULT_NO_ANSWER
    assert data["conversation_retention_period"] == "year"


def test_a_project_without_a_folder_knows_nothing(served: Emulator, client: httpx.Client) -> None:
    served.ensure_project(2002, "empty")
    created = client.post("/api/v1/projects/2002/conversations", json={"name": "Q"})
    session = created.json()["data"]["session_id"]
    sent = client.post(f"/api/v1/projects/2002/conversations/{session}/messages",
                       json={"prompt": "refund policy"})
    assert sent.json()["data"]["openai_response"] == DEFAULT_NO_ANSWER


# Citations resolve ---------------------------------------------------------------------------


@pytest.mark.parametrize(("citation", "status"), [
    ("1", 404), ("abc", 400), ("9" * 5000, 404), ("-1", 400),
], ids=["unknown", "not-a-number", "5000-digits", "negative"])
def test_a_citation_that_is_not_one_is_refused(
    client: httpx.Client, citation: str, status: int
) -> None:
    answered = client.get(f"{CITATIONS}/{citation}")
    assert answered.status_code == status
    assert answered.json()["status"] == "error"


def test_a_citation_belongs_to_its_project(served: Emulator, client: httpx.Client,
                                           session: str) -> None:
    citation = ask(client, session, "refund policy")["citations"][0]
    served.ensure_project(2002, "other")
    assert client.get(f"/api/v1/projects/2002/citations/{citation}").status_code == 404


def test_without_content_answers_stay_canned_and_no_citation_resolves(
    http: httpx.Client, emulator: Emulator
) -> None:
    session = http.post("/api/v1/projects/1001/conversations", json={"name": "Q"}).json()
    sent = http.post(f"/api/v1/projects/1001/conversations/{session['data']['session_id']}"
                     "/messages", json={"prompt": "refund policy"}).json()["data"]
    assert sent["openai_response"] == 'Emulated answer to "refund policy" (2 words).'
    assert sent["citations"] == []
    assert http.get("/api/v1/projects/1001/citations/1").status_code == 404
    assert http.get("/api/v1/projects/1001/settings").json()["data"][
        "no_answer_message"] == DEFAULT_NO_ANSWER


# Hostile files -----------------------------------------------------------------------------


def test_a_huge_file_is_skipped_and_the_others_still_answer(
    library: Path, client: httpx.Client, session: str, caplog: pytest.LogCaptureFixture
) -> None:
    huge = library / str(PROJECT) / "huge.md"
    with huge.open("w", encoding="utf-8") as stream:
        stream.write("Zebra crossings are painted white.\n\n")
        stream.write("filler " * (MAX_FILE_BYTES // 7 + 1))
    assert ask(client, session, "zebra crossings")["openai_response"] == DEFAULT_NO_ANSWER
    assert ask(client, session, "refund policy")["openai_response"] == REFUND_PASSAGE
    assert "huge.md skipped: larger than" in caplog.text


def test_files_past_the_count_bound_are_not_read(
    library: Path, client: httpx.Client, session: str
) -> None:
    folder = library / str(PROJECT) / "many"
    folder.mkdir()
    for number in range(MAX_DOCUMENTS):
        (folder / f"doc-{number:04}.md").write_text(f"Entry {number}.")
    (library / str(PROJECT) / "zz-last.md").write_text("Zebra crossings are painted white.")
    assert ask(client, session, "zebra crossings")["openai_response"] == DEFAULT_NO_ANSWER
    assert ask(client, session, "entry 7")["openai_response"] == "Entry 7."


def test_a_binary_file_is_skipped(library: Path, client: httpx.Client, session: str) -> None:
    (library / str(PROJECT) / "logo.md").write_bytes(b"Zebra crossings\0\x89PNG\xff\xfe")
    assert ask(client, session, "zebra crossings")["openai_response"] == DEFAULT_NO_ANSWER


def test_text_that_is_not_utf8_is_read_with_replacements(
    library: Path, client: httpx.Client, session: str
) -> None:
    (library / str(PROJECT) / "latin.txt").write_bytes("Zebra crossings café".encode("latin-1"))
    assert ask(client, session, "zebra crossings")["openai_response"] == (
        "Zebra crossings caf\ufffd")


def test_other_kinds_of_files_and_hidden_ones_are_not_read(
    library: Path, client: httpx.Client, session: str
) -> None:
    (library / str(PROJECT) / "notes.pdf").write_text("Zebra crossings", encoding="utf-8")
    (library / str(PROJECT) / ".draft.md").write_text("Zebra crossings", encoding="utf-8")
    (library / str(PROJECT) / ".git").mkdir()
    (library / str(PROJECT) / ".git" / "HEAD.md").write_text("Zebra crossings")
    assert ask(client, session, "zebra crossings")["openai_response"] == DEFAULT_NO_ANSWER


def test_a_link_out_of_the_directory_is_not_followed(
    tmp_path: Path, library: Path, client: httpx.Client, session: str
) -> None:
    secret = tmp_path / "secret.md"
    secret.write_text("Zebra crossings: the vault code is 4711.", encoding="utf-8")
    (library / str(PROJECT) / "escape.md").symlink_to(secret)
    (library / str(PROJECT) / "escape-dir").symlink_to(tmp_path, target_is_directory=True)
    (library / str(PROJECT) / "passwd.md").symlink_to("/etc/passwd")
    message = ask(client, session, "zebra crossings vault code root")
    assert "4711" not in message["openai_response"]
    assert message["openai_response"] == DEFAULT_NO_ANSWER


def test_a_project_folder_that_links_out_is_not_followed(
    tmp_path: Path, library: Path, served: Emulator, client: httpx.Client
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("Zebra crossings: the vault code is 4711.")
    (library / "2002").symlink_to(outside, target_is_directory=True)
    served.ensure_project(2002, "linked")
    session = client.post("/api/v1/projects/2002/conversations", json={"name": "Q"}).json()
    sent = client.post(f"/api/v1/projects/2002/conversations/{session['data']['session_id']}"
                       "/messages", json={"prompt": "zebra vault code"}).json()["data"]
    assert sent["openai_response"] == DEFAULT_NO_ANSWER


def test_a_link_to_a_file_inside_the_directory_is_followed(
    library: Path, client: httpx.Client, session: str
) -> None:
    shared = library / "shared.md"
    shared.write_text("Zebra crossings are painted white.", encoding="utf-8")
    (library / str(PROJECT) / "zebra.md").symlink_to(shared)
    message = ask(client, session, "zebra crossings")
    assert message["openai_response"] == "Zebra crossings are painted white."
    assert cited(client, message["citations"][0])["url"] == "zebra.md"


def test_a_fifo_does_not_hang_the_emulator(
    library: Path, client: httpx.Client, session: str
) -> None:
    os.mkfifo(library / str(PROJECT) / "pipe.md")
    assert ask(client, session, "refund policy")["openai_response"] == REFUND_PASSAGE


def test_a_link_loop_is_harmless(library: Path, client: httpx.Client, session: str) -> None:
    (library / str(PROJECT) / "loop.md").symlink_to(library / str(PROJECT) / "loop.md")
    (library / str(PROJECT) / "guides" / "up").symlink_to(library, target_is_directory=True)
    assert ask(client, session, "refund policy")["openai_response"] == REFUND_PASSAGE


@pytest.mark.parametrize("name", [
    "caf\u00e9.md",  # NFC
    unicodedata.normalize("NFD", "caf\u00e9.md"),
    "\u202etxt.md",  # right-to-left override
    "line\nbreak.md",
    "spaces and %41 percent.md",
    "emoji \U0001f993.md",
], ids=["nfc", "nfd", "rtl-override", "newline", "percent", "emoji"])
def test_odd_unicode_names_answer_and_resolve(
    library: Path, client: httpx.Client, session: str, name: str
) -> None:
    (library / str(PROJECT) / name).write_text("Zebra crossings are painted white.")
    message = ask(client, session, "zebra crossings")
    assert message["citations"] == [document_id(PROJECT, name)]
    document = cited(client, message["citations"][0])
    assert document["title"] == name


def test_a_name_that_is_not_utf8_answers_and_resolves(
    library: Path, client: httpx.Client, session: str
) -> None:
    name = os.fsdecode(b"bad-\xff-name.md")
    try:
        (library / str(PROJECT) / name).write_text("Zebra crossings are painted white.")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    message = ask(client, session, "zebra crossings")
    document = cited(client, message["citations"][0])
    assert document["title"] == "bad-\ufffd-name.md"
    assert document["url"] == "bad-%EF%BF%BD-name.md"


def test_a_long_paragraph_is_answered_cut(library: Path, client: httpx.Client,
                                          session: str) -> None:
    (library / str(PROJECT) / "long.md").write_text("Zebra crossings " + "word " * 5000)
    answer = ask(client, session, "zebra crossings")["openai_response"]
    assert answer.startswith("Zebra crossings word") and answer.endswith(" …")
    assert len(answer) <= 1502


# Starting it -------------------------------------------------------------------------------


def test_a_content_directory_that_is_not_one_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file.md").write_text("x")
    for given in (tmp_path / "missing", tmp_path / "file.md"):
        with pytest.raises(EmulatorError, match="content directory"):
            Emulator(content=given)


def test_the_command_answers_from_its_content_directory(library: Path, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--enable-admin", "--content",
         str(library)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        settings = dict(process.stdout.readline().strip().split("=", 1) for _ in range(2))
        url, key = settings["CUSTOMGPT_BASE_URL"], settings["CUSTOMGPT_API_KEY"]
        httpx.post(url + "/_emulator/projects", json={"id": PROJECT, "name": "p"})
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client:
            session = client.post(CONV, json={"name": "Q"}).json()["data"]["session_id"]
            assert ask(client, session, "refund policy")["openai_response"] == REFUND_PASSAGE
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "answering from" in (process.stderr.read() if process.stderr else "")


def test_the_command_refuses_a_missing_content_directory(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["emulator", "--content", str(tmp_path / "none")], env={}, stdout=out,
                stderr=err)
    assert code == 1 and out.getvalue() == ""
    assert f"the content directory {tmp_path / 'none'} does not exist" in err.getvalue()
    assert "Traceback" not in err.getvalue()


def test_the_sandbox_answers_from_reconciler_content(tmp_path: Path, library: Path) -> None:
    root = tmp_path / ".reconciler"
    root.mkdir()
    library.rename(root / "content")
    with start_sandbox([PROJECT], root=root) as sandbox:
        session = sandbox.emulator.add_conversation(PROJECT, "Q")["session_id"]
        message = sandbox.emulator.add_message(PROJECT, session, "refund policy")
    assert message["openai_response"] == REFUND_PASSAGE


def test_the_sandbox_without_content_stays_canned(tmp_path: Path) -> None:
    with start_sandbox([PROJECT], root=tmp_path / ".reconciler") as sandbox:
        session = sandbox.emulator.add_conversation(PROJECT, "Q")["session_id"]
        message = sandbox.emulator.add_message(PROJECT, session, "refund policy")
    assert message["openai_response"] == 'Emulated answer to "refund policy" (2 words).'


# The words retrieval compares ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("What is the refund policy?", {"refund", "policy"}),
    ("Refunds, POLICIES and days", {"refund", "policy", "day"}),
    ("the status of the process analysis", {"status", "process", "analysis"}),
    ("ﬁne Café", {"fine", "café"}),  # NFKC: the ligature is two letters
    ("snake_case 2 x", {"snake", "case", "2"}),
], ids=["stop-words", "plurals", "not-plurals", "nfkc", "underscore-digit-letter"])
def test_the_words_compared(text: str, expected: set[str]) -> None:
    assert terms(text) == expected


def test_a_long_prompt_against_many_passages_costs_little(
    library: Path, client: httpx.Client, session: str
) -> None:
    # 10,000 passages share "appears" with a prompt of 60,000 other words: counting how rare
    # each word is must not take words times passages (600 million steps).
    for number in range(200):
        (library / str(PROJECT) / f"note-{number:03}.md").write_text(
            "\n\n".join(f"Word{number}x{line} appears here." for line in range(50)))
    prompt = "appears " + " ".join(f"w{n}" for n in range(60_000))
    assert ask(client, session, prompt)["openai_response"] == DEFAULT_NO_ANSWER
