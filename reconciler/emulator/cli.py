"""`reconciler emulator`: arguments and the foreground server loop."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from reconciler.api.settings import is_loopback, read_key_file
from reconciler.arguments import whole_number
from reconciler.emulator import wire
from reconciler.emulator.faults import MAX_PER_MINUTE, FaultConfigError, Faults
from reconciler.emulator.service import DEFAULT_API_KEY, Emulator, EmulatorError
from reconciler.emulator.variants import (
    VariantConfigError,
    Variants,
    add_variant_arguments,
    variants_from_args,
)
from reconciler.errors import InputError, Problem


def add_emulator_command(commands: Any) -> None:
    """Register the `emulator` sub-command on `commands` (an argparse sub-parsers object)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "emulator", help="Serve a local emulator of the CustomGPT.ai API.",
        description="Serve the CustomGPT.ai conversation API on loopback, backed by SQLite, "
                    "until Ctrl-C. Prints CUSTOMGPT_BASE_URL and CUSTOMGPT_API_KEY lines.",
        epilog="example: reconciler emulator --port 8765 --db emulator.db --enable-admin",
    )
    server = parser.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on "
                        "(default 127.0.0.1; loopback only unless --allow-remote)")
    server.add_argument("--port", type=_port, default=0,
                        help="port to listen on (default 0: any free port)")
    server.add_argument("--allow-remote", action="store_true",
                        help="allow a --host that is not a loopback address")
    server.add_argument("--db", default=":memory:", metavar="PATH",
                        help="SQLite database file (default :memory:, lost on exit)")
    server.add_argument("--api-key", default=None, metavar="KEY",
                        help=f"the bearer token the emulator accepts (default {DEFAULT_API_KEY!r})")
    server.add_argument("--member-key", default=None, metavar="KEY",
                        help="a second bearer token, a team member's (user 2, role member): it "
                             "may not rename, delete or send to conversations other users "
                             "started (403); never printed")
    server.add_argument("--content", default=None, metavar="DIR",
                        help="answer from documents: DIR/<project id>/ holds a project's text "
                             "and markdown files; an answer is the passages that share the most "
                             "words with the prompt, citing their files, or the project's "
                             "no_answer_message (default: canned answers)")
    server.add_argument("--health", default=None, metavar="FILE",
                        help="show the answer checks of FILE (the JSON of `reconciler check "
                             "--format json`, as the sandbox keeps it in "
                             ".reconciler/health.json) on the pages")
    server.add_argument("--enable-admin", action="store_true",
                        help="serve the test controls under /_emulator/")
    server.add_argument("--page-size", type=_page_size, default=10, metavar="N",
                        help="items per listing page, the API's per_page (default 10)")
    server.add_argument("--query-credits", type=_credits, default=None, metavar="N",
                        help="messages that may be sent before 429 'query credits exhausted' "
                             "(default unlimited)")
    faults = parser.add_argument_group("faults")
    faults.add_argument("--latency-ms", type=float, default=0.0, metavar="MS")
    faults.add_argument("--latency-jitter-ms", type=float, default=0.0, metavar="MS")
    faults.add_argument("--error-rate", type=float, default=0.0, metavar="F",
                        help="share of requests answered 5xx before doing anything")
    faults.add_argument("--commit-then-fail-rate", type=float, default=0.0, metavar="F",
                        help="share of writes done, then answered 500 or dropped")
    faults.add_argument("--drop-rate", type=float, default=0.0, metavar="F",
                        help="share of requests whose connection is closed without an answer")
    faults.add_argument("--rate-limit", type=float, default=0.0, metavar="RPS",
                        help="requests per second before 429 with Retry-After (0: no limit)")
    faults.add_argument("--rate-limit-per-minute", type=_per_minute, default=0, metavar="N",
                        help="the real service's budget: N requests per key per minute, fixed "
                             "window, X-RateLimit-* headers, 429 with Retry-After (0: no limit)")
    faults.add_argument("--rate-limit-window", type=float, default=60.0, metavar="SECONDS",
                        help="time scale for benchmarks: the budget's window in seconds "
                             "(default 60, as the real service; a shorter window is advertised "
                             "in a RateLimit-Policy header)")
    faults.add_argument("--seed", type=_seed, default=None, metavar="N",
                        help="seed for reproducible faults")
    add_variant_arguments(parser)


_port = whole_number(0, 65535)
_page_size = whole_number(1, wire.MAX_ID)
_credits = whole_number(0, wire.MAX_ID)
_per_minute = whole_number(0, MAX_PER_MINUTE)
_seed = whole_number(0, wire.MAX_ID)  # a negative seed repeats the faults of its absolute value


def faults_from_args(args: argparse.Namespace) -> Faults:
    """The fault settings given on the command line; raises InputError if out of range."""
    try:
        return Faults(latency_ms=args.latency_ms, latency_jitter_ms=args.latency_jitter_ms,
                      error_rate=args.error_rate, commit_then_fail_rate=args.commit_then_fail_rate,
                      drop_rate=args.drop_rate, rate_limit=args.rate_limit,
                      rate_limit_per_minute=args.rate_limit_per_minute,
                      rate_limit_window=args.rate_limit_window, seed=args.seed)
    except FaultConfigError as problem:
        raise InputError([Problem(str(problem))]) from None


def variants_of(args: argparse.Namespace) -> Variants:
    """The variants of the real service given on the command line; raises InputError."""
    try:
        return variants_from_args(args)
    except VariantConfigError as problem:
        raise InputError([Problem(str(problem))]) from None


def _api_key(args: argparse.Namespace) -> tuple[str, bool]:
    """The key to serve and whether it may be printed (only the built-in default is); raises
    InputError for a key no request could give."""
    if args.api_key is not None:
        return _usable_key(args.api_key, "--api-key"), False
    key_file = getattr(args, "api_key_file", None)
    if key_file:
        key = read_key_file(key_file, option="--api-key-file")
        if not key:
            raise InputError([Problem("the API key file is empty")])
        return key, False
    return DEFAULT_API_KEY, True


def _usable_key(key: str, flag: str) -> str:
    """`key` as given; raises InputError for a key no request could give (empty, or with
    surrounding spaces: a request's token is read without them)."""
    if not key or key != key.strip():
        raise InputError([Problem(f"{flag} must be a key without surrounding spaces, not "
                                  "empty")])
    return key


def cmd_emulator(args: argparse.Namespace, console: Any) -> int:
    """`reconciler emulator`: serve until Ctrl-C (or SIGTERM); exit 0 after a clean stop."""
    if not args.allow_remote and not is_loopback(args.host):
        raise InputError([Problem(f"--host {args.host} is not a loopback address; "
                                  "add --allow-remote to serve on it anyway")])
    key, printable = _api_key(args)
    member_key = args.member_key and _usable_key(args.member_key, "--member-key")
    for option, value in (("--content", args.content), ("--health", args.health)):
        if value == "":
            raise InputError([Problem(f"{option} must name a "
                                      f"{'directory' if option == '--content' else 'file'}, "
                                      "not be empty")])
    emulator = Emulator(db=args.db, api_key=key, faults=faults_from_args(args),
                        enable_admin=args.enable_admin, page_size=args.page_size,
                        variants=variants_of(args), member_key=member_key,
                        content=args.content, health=args.health)
    emulator.query_credits = args.query_credits
    try:
        base_url = emulator.start(args.host, args.port, allow_remote=args.allow_remote)
    except EmulatorError:
        emulator.stop()
        raise
    try:
        console.result(f"CUSTOMGPT_BASE_URL={base_url}")
        console.result(f"CUSTOMGPT_API_KEY={key}" if printable else
                       "# CUSTOMGPT_API_KEY: the key given with --api-key/--api-key-file")
        console.out.flush()
        variants = emulator.variants.describe()
        behaving = f"; behaving as {variants}" if variants else ""
        answering = f"; answering from {args.content}" if args.content else ""
        console.info(f"emulator serving on {base_url} (database {args.db}{answering}"
                     f"{behaving}); Ctrl-C to stop")
        if is_loopback(args.host):
            console.info(f"open {base_url}/ in a browser to see its projects and conversations")
        _wait_for_stop()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    console.info("emulator stopped")
    return 0


def _wait_for_stop() -> None:
    """Block until SIGTERM (Ctrl-C raises KeyboardInterrupt in the caller)."""
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
