"""`python -m tests.equivalence [REV] [--keep DIR] [--variant NAME]`: see the package docstring."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from reconciler.emulator import Emulator, Variants

ROOT = Path(__file__).resolve().parent.parent.parent
KEY = "equivalence-key-0123456789"
MEMBER_KEY = "equivalence-member-key-0123"
PLAN_KEY = "equivalence-plan-key-0123456789abcdef"

# The variants of the real service that change what the tool sees: stored prompts, wire shapes,
# listings (see reconciler/emulator/variants.py).
VARIANTS = {
    "documented": Variants(),
    "escaped-trimmed": Variants(escape_prompts=True, trim_text=True, name_filter="exact"),
    "observed-2023": Variants(wire="observed-2023", user_filter_me="unsupported",
                              team_filter_excludes_owner=True, per_page="ignored"),
}

SEED = """\
version: 1
projects:
  - id: 1001
    label: demo
    conversations:
      - name: Onboarding FAQ
        messages:
          - What can this assistant help me with?
          - prompt: "How do I reset my password?"
            reaction: liked
      - name: Billing
        messages: ["How much does it cost?"]
      - name: Old notes
        messages: ["Remember this", "  Q&A <beta>  "]
      - name: QA temp
  - id: 1002
    label: team
    scope: team
    conversations:
      - name: Produktdemo
        messages: ["Was kann dieser Assistent?"]
      - name: Preise
"""

DESIRED = """\
version: 1
defaults:
  scope: mine
projects:
  - id: 1001
    label: demo
    prune: true
    owns: ["QA *", "Old *", "Billing*"]
    protect: ["QA keep*"]
    conversations:
      - name: Onboarding FAQ
        messages:
          - What can this assistant help me with?
          - prompt: "How do I reset my password?"
            reaction: disliked
          - prompt: "Where are the docs?"
            expect: {contains: ["docs"], max_chars: 5000}
      - name: Billing questions
        renamed_from: [Billing]
        messages: ["How much does it cost?", "Is there a discount?"]
      - name: Product demo
        persona: You are terse.
        response_source: own_content
        messages: ["Show me a demo"]
  - id: 1002
    label: team
    scope: team
    ignore: ["Draft*"]
    conversations:
      - name: Produktdemo
        messages: ["Was kann dieser Assistent?"]
      - name: Preise
        messages: ["Was kostet es?"]
      - name: QA shared
  - id: 1003
    label: everyone
    scope: all
    lang: de
    conversations:
      - name: Visitor chat
      - name: Neu
  - id: 1004
    label: looked-up
    scope: all
    conversations:
      - name: Lobby 7
        messages: ["Anyone here?"]
      - name: Brand new
"""

# After the first apply: a conversation renamed back, one declared away, a prompt changed.
LATER = DESIRED.replace("Billing questions", "Billing").replace(
    "        renamed_from: [Billing]\n", "").replace("Show me a demo", "Show me two demos")

INVALID = """\
version: 1
projects:
  - id: 1001
    scope: ours
    conversations:
      - name: A
      - name: A
        renamed_from: [A]
      - nam: B
  - id: 0
    conversations: []
"""


@dataclass(frozen=True)
class Step:
    """One command of the scenario; `before` changes live state first (the emulator's test
    controls), `files` are the files it writes that the diff reads."""

    name: str
    argv: tuple[str, ...]
    before: Callable[[Emulator], None] | None = None


def _sent_by_hand(emu: Emulator) -> None:
    """Live state moves between a plan and its apply: a prompt the plan sends is sent by
    hand, and a message nobody declared is added to a declared conversation."""
    by_name = {c["name"]: c["session_id"] for c in emu.conversations(1001)}
    emu.add_message(1001, by_name["Product demo"], "Show me two demos")
    emu.add_message(1001, by_name["Onboarding FAQ"], "A question typed by hand")


def _teammate_duplicate(emu: Emulator) -> None:
    """A teammate starts a conversation with a declared name in a team-scoped project."""
    emu.add_conversation(1002, "Preise", creator="teammate")


def _credits_spent(emu: Emulator) -> None:
    """The account's query credits are spent: what sends is refused before anything is done."""
    emu.query_credits = 1


def _credits_renewed(emu: Emulator) -> None:
    emu.query_credits = None


STEPS = (
    Step("validate", ("validate", "-f", "desired.yaml")),
    Step("validate-invalid", ("validate", "-f", "invalid.yaml")),
    Step("plan-text", ("plan", "-f", "desired.yaml")),
    Step("plan-verbose", ("-v", "plan", "-f", "desired.yaml", "--detailed-exitcode")),
    Step("plan-json", ("plan", "-f", "desired.yaml", "--format", "json")),
    Step("plan-markdown", ("plan", "-f", "desired.yaml", "--format", "markdown")),
    Step("plan-one-project", ("plan", "-f", "desired.yaml", "--project", "1002")),
    Step("plan-max-sends", ("plan", "-f", "desired.yaml", "--max-sends", "1")),
    Step("plan-max-deletes", ("plan", "-f", "desired.yaml", "--max-deletes", "0")),
    Step("plan-save", ("plan", "-f", "desired.yaml", "--out", "saved.json",
                       "--plan-key-file", "plan.key", "--allow-mass-delete")),
    Step("show-text", ("show", "saved.json")),
    Step("show-json", ("show", "saved.json", "--format", "json")),
    Step("check-before", ("check", "-f", "desired.yaml")),
    Step("apply-plan-max-sends", ("apply", "--plan", "saved.json", "--plan-key-file", "plan.key",
                                  "--auto-approve", "--max-sends", "2", "--allow-mass-delete")),
    Step("apply-plan-unsigned", ("apply", "--plan", "saved.json", "--auto-approve")),
    Step("apply-dry-run", ("apply", "-f", "desired.yaml", "--dry-run", "--allow-mass-delete")),
    Step("apply-plan", ("apply", "--plan", "saved.json", "--plan-key-file", "plan.key",
                        "--auto-approve", "--report", "report.json", "--backup-dir", "backups",
                        "--allow-mass-delete")),
    Step("plan-after", ("-v", "plan", "-f", "desired.yaml", "--detailed-exitcode")),
    Step("check-text", ("check", "-f", "desired.yaml")),
    Step("check-json", ("check", "-f", "desired.yaml", "--format", "json")),
    Step("check-junit", ("check", "-f", "desired.yaml", "--format", "junit",
                         "--out", "check.xml")),
    Step("export-all", ("export", "--project", "1001", "--project", "1002", "--scope", "all",
                        "--with-messages", "-o", "export.yaml")),
    Step("export-mine-pinned", ("export", "--project", "1001", "--scope", "mine", "--pin")),
    Step("plan-later-save", ("plan", "-f", "later.yaml", "--out", "later.json",
                             "--allow-mass-delete")),
    Step("apply-stale", ("apply", "--plan", "later.json", "--auto-approve",
                         "--allow-mass-delete"), before=_sent_by_hand),
    Step("apply-later", ("apply", "-f", "later.yaml", "--auto-approve", "--report",
                         "later-report.json", "--backup-dir", "backups", "--allow-mass-delete")),
    Step("restore-max-sends", ("restore", "BACKUP", "--resend-prompts", "--max-sends", "0")),
    Step("plan-over-credits", ("plan", "-f", "desired.yaml", "--allow-mass-delete"),
         before=_credits_spent),
    Step("apply-over-credits", ("apply", "-f", "desired.yaml", "--auto-approve",
                                "--allow-mass-delete")),
    Step("restore-over-credits", ("restore", "BACKUP", "--resend-prompts")),
    Step("restore", ("restore", "BACKUP", "--resend-prompts"), before=_credits_renewed),
    Step("restore-again", ("restore", "BACKUP")),
    Step("plan-final", ("plan", "-f", "later.yaml", "--format", "json"),
         before=_teammate_duplicate),
)


def seed(db: Path, variants: Variants, tree: Path, work: Path) -> None:
    """The live state both sides start from: projects, conversations of the key's user made by
    applying SEED, and conversations of a teammate and a visitor."""
    with Emulator(db=str(db), api_key=KEY, member_key=MEMBER_KEY, variants=variants) as emu:
        for project_id, name in ((1001, "demo-bot"), (1002, "team-bot"), (1003, "open-bot"),
                                 (1004, "lobby-bot")):
            emu.ensure_project(project_id, name)
        emu.add_conversation(1001, "Visitor chat", creator="visitor")
        emu.add_conversation(1001, "QA teammate", creator="teammate")
        emu.add_conversation(1001, "QA keep me")
        emu.add_conversation(1002, "QA shared", creator="teammate")
        emu.add_conversation(1002, "Draft one")
        emu.add_conversations(1003, [f"Visitor chat {n}" for n in range(12)], creator="visitor")
        emu.add_conversation(1003, "Visitor chat", creator="visitor")
        # Long enough that a prune-off project is cheaper to read by name than listed whole.
        emu.add_conversations(1004, [f"Lobby {n}" for n in range(45)], creator="visitor")
        emu.start()
        (work / "seed.yaml").write_text(SEED, encoding="utf-8")
        ran = run_cli(tree, work, emu.base_url, ("apply", "-f", "seed.yaml", "--auto-approve"))
        if ran[0] != 0:
            raise SystemExit(f"seeding failed:\n{ran[2]}")


def run_cli(tree: Path, work: Path, base_url: str,
            argv: tuple[str, ...]) -> tuple[int, str, str]:
    """Run `reconciler ARGV` of the package in `tree`, in `work`; its exit code and output."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "PYTHONPATH": str(tree),
           "CUSTOMGPT_API_KEY": KEY, "CUSTOMGPT_BASE_URL": base_url, "NO_COLOR": "1",
           "COLUMNS": "100", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
    done = subprocess.run([sys.executable, "-m", "reconciler", *argv], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    return done.returncode, done.stdout, done.stderr


def play(tree: Path, work: Path, db: Path, variants: Variants) -> str:
    """The scenario run by the package in `tree`: everything a user sees, in one text."""
    for name, text in (("desired.yaml", DESIRED), ("later.yaml", LATER),
                       ("invalid.yaml", INVALID), ("plan.key", PLAN_KEY)):
        (work / name).write_text(text, encoding="utf-8")
    out: list[str] = []
    with Emulator(db=str(db), api_key=KEY, member_key=MEMBER_KEY, variants=variants,
                  enable_admin=True) as emu:
        emu.start()
        for step in STEPS:
            if step.before is not None:
                step.before(emu)
            argv = step.argv
            if argv[0] in ("apply", "restore"):  # progress lines in a fixed order
                argv = ("--parallelism", "1", *argv)
            if "BACKUP" in argv:
                backups = sorted((work / "backups").rglob("*.json"),
                                 key=lambda p: p.read_text(encoding="utf-8"))
                backup = str(backups[0].relative_to(work)) if backups else "backups/none.json"
                argv = tuple(backup if a == "BACKUP" else a for a in argv)
            code, stdout, stderr = run_cli(tree, work, emu.base_url, argv)
            if "-v" in argv:  # projects are planned concurrently: their log lines interleave
                stderr = "".join(sorted(stderr.splitlines(keepends=True)))
            out.append(f"=== {step.name}: reconciler {' '.join(step.argv)} -> exit {code}\n"
                       f"--- stdout\n{stdout}--- stderr\n{stderr}")
        out.append(f"=== live state\n{live_state(emu)}")
        base_url = emu.base_url
    for path in sorted(p for p in work.rglob("*") if p.is_file()):
        relative = path.relative_to(work)
        if relative.parts[0] in (".reconciler",) or relative.suffix == ".key":
            continue
        out.append(f"=== file {relative}\n{path.read_text(encoding='utf-8', errors='replace')}")
    return normalise("\n".join(out), base_url=base_url, work=work)


def live_state(emu: Emulator) -> str:
    """What the run left live: every conversation's name, creator and messages."""
    lines = []
    for project_id in (1001, 1002, 1003, 1004):
        for c in sorted(emu.conversations(project_id), key=lambda c: c["id"]):
            lines.append(f"{project_id} {c['id']} {c['name']!r} {c['session_id']} "
                         f"by {c.get('created_by')}")
            for m in emu.messages(project_id, c["session_id"]):
                lines.append(f"    {m.get('id')} {m.get('user_query')!r} "
                             f"{m.get('feedback') or m.get('reaction')}")
    return "\n".join(lines) + "\n"


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMES = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"
                   r"|\d\d? [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d|\b\d{8}T\d{6}Z\b")
SIGNATURE = re.compile(r'("signature": ?")[^"]*(")')
CHECKSUM = re.compile(r"sha256:[0-9a-f]{64}")
SECONDS = re.compile(r"\b\d+(?:\.\d+)? ?(m?s)\b")


def normalise(text: str, *, base_url: str, work: Path) -> str:
    """`text` with what differs between two runs of the same code replaced by placeholders."""
    text = text.replace(base_url, "<base-url>").replace(str(work), "<work>")
    text = base_url.rsplit(":", 1)[-1].join(text.split(":" + base_url.rsplit(":", 1)[-1]))
    seen: dict[str, str] = {}
    text = UUID.sub(lambda m: seen.setdefault(m.group(0), f"<session-{len(seen) + 1}>"), text)
    text = TIMES.sub("<time>", text)
    text = SIGNATURE.sub(r"\1<signature>\2", text)
    text = CHECKSUM.sub("sha256:<checksum>", text)  # it covers times and new session ids
    return SECONDS.sub(r"<n> \1", text)


def side(tree: Path, root: Path, name: str, seed_db: Path, variants: Variants) -> str:
    work = root / name
    work.mkdir()
    db = root / f"{name}.db"
    shutil.copyfile(seed_db, db)
    return play(tree, work, db, variants)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.equivalence")
    parser.add_argument("rev", nargs="?", default=None,
                        help="the revision to compare with (default: git merge-base main HEAD)")
    parser.add_argument("--keep", metavar="DIR", help="keep both sides' outputs in DIR")
    parser.add_argument("--variant", choices=sorted(VARIANTS), action="append")
    args = parser.parse_args()
    rev = args.rev or subprocess.run(["git", "merge-base", "main", "HEAD"], cwd=ROOT, check=True,
                                     capture_output=True, text=True).stdout.strip()
    failed = False
    with tempfile.TemporaryDirectory(prefix="equivalence-") as temp:
        root = Path(temp)
        old_tree = root / "old-tree"
        old_tree.mkdir()
        archive = subprocess.run(["git", "archive", rev, "reconciler"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive, check=True)
        for name in args.variant or sorted(VARIANTS):
            variants = VARIANTS[name]
            here = root / name
            here.mkdir()
            (here / "seed").mkdir()
            seed(here / "seed.db", variants, ROOT, here / "seed")
            with ThreadPoolExecutor(2) as pool:
                old = pool.submit(side, old_tree, here, "old", here / "seed.db", variants)
                new = pool.submit(side, ROOT, here, "new", here / "seed.db", variants)
                before, after = old.result(), new.result()
            if args.keep:
                keep = Path(args.keep) / name
                keep.mkdir(parents=True, exist_ok=True)
                (keep / "old.txt").write_text(before, encoding="utf-8")
                (keep / "new.txt").write_text(after, encoding="utf-8")
            steps = before.count("\n=== ")
            if before == after:
                print(f"{name}: identical ({steps} sections, {len(before)} characters) "
                      f"between {rev[:12]} and the working tree")
                continue
            failed = True
            print(f"{name}: DIFFERENT between {rev[:12]} and the working tree")
            sys.stdout.writelines(difflib.unified_diff(
                before.splitlines(keepends=True), after.splitlines(keepends=True),
                fromfile=f"{rev[:12]}/{name}", tofile=f"working-tree/{name}"))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
