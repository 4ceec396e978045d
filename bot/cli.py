"""Command line: serve, match, kb check / list, eval, jobs."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from bot.errors import KnowledgeError, SettingsError
from bot.knowledge import KnowledgeBase, default_knowledge_dir, load_knowledge_base

# A build log given on the command line is read whole, whatever its size (people run `match` in CI on
# their failed build's output); only issue text from webhooks has GitHub's caps.
FILE_TEXT_CAP = sys.maxsize
DEFAULT_DATABASE_URL = "sqlite:///data/linker-triage.sqlite3"


def issue_from_payload(data: Any, path: str) -> Any:
    """Title, body and comment of an issues / issue_comment webhook payload as an IssueText."""
    from bot.triage import IssueText

    if not isinstance(data, dict) or not isinstance(data.get("issue"), dict):
        raise ValueError(f"{path}: not an issues or issue_comment webhook payload (no 'issue' object)")
    issue = data["issue"]
    comment = data.get("comment")
    comments: tuple[str, ...] = ()
    if isinstance(comment, dict) and isinstance(comment.get("body"), str):
        comments = (comment["body"],)
    repo = data.get("repository")
    return IssueText(
        title=str(issue.get("title") or ""),
        body=str(issue.get("body") or ""),
        comments=comments,
        repo=str(repo.get("full_name", "")) if isinstance(repo, dict) else "",
        is_pull_request=bool(issue.get("pull_request")),
        author=str((issue.get("user") or {}).get("login", "")),
    )


def read_input(path: str, stdin: TextIO) -> tuple[Any, int]:
    """An IssueText and the text cap for one CLI input (file, webhook JSON, or '-')."""
    from bot.triage import IssueText
    from bot.triage.extract import ISSUE_TEXT_CAP

    if path == "-":
        return IssueText(title="", body=stdin.read()), FILE_TEXT_CAP
    file = Path(path)
    raw = file.read_bytes()
    if file.suffix == ".json":
        return issue_from_payload(json.loads(raw.decode("utf-8")), path), ISSUE_TEXT_CAP
    return IssueText(title="", body=raw.decode("utf-8", "replace")), FILE_TEXT_CAP


def load_kb_or_exit(directory: Path | None, err: TextIO) -> KnowledgeBase:
    """The knowledge base, or exit 2 with every problem named."""
    try:
        return load_knowledge_base(directory or default_knowledge_dir())
    except KnowledgeError as exc:
        print(str(exc), file=err)
        raise SystemExit(2) from exc


def cmd_match(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print the comment (or JSON) the bot would produce for each input."""
    from bot.triage import triage

    kb = load_kb_or_exit(args.knowledge, err)
    status = 0
    for path in args.paths:
        try:
            issue, cap = read_input(path, sys.stdin)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            print(f"{path}: {exc}", file=err)
            status = 1
            continue
        # A build log can be hundreds of MB: match its chunks on every core (the server uses one).
        result = triage(issue, kb, cap=cap, workers=os.cpu_count() or 1)
        if args.json:
            record = {
                "input": path,
                "decision": result.decision,
                "confidence": round(result.matches[0].confidence, 3) if result.matches else 0.0,
                "matches": [m.to_json() for m in result.matches],
                "comment": result.comment,
                "reason": result.reason,
                "context": result.context,
                "labels": result.labels,
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            if len(args.paths) > 1:
                out.write(f"==> {path} <==\n")
            if result.comment:
                out.write(result.comment)
            else:
                out.write(f"(silent: {result.reason})\n")
    return status


def cmd_kb_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Validate every entry and run its examples."""
    from bot.kbcheck import check_examples

    kb = load_kb_or_exit(args.knowledge, err)
    failures, counts = check_examples(kb)
    for failure in failures:
        out.write(f"FAIL {failure}\n")
    out.write(
        f"{len(kb.entries)} entries, {counts['positive']} positive and {counts['negative']} negative "
        f"examples run, {len(failures)} failed\n"
    )
    return 1 if failures else 0


def cmd_kb_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """List the entries, as text, JSON or the markdown catalogue."""
    from bot.kbcheck import catalogue_markdown

    kb = load_kb_or_exit(args.knowledge, err)
    if args.markdown:
        out.write(catalogue_markdown(kb))
    elif args.json:
        for entry in kb.entries:
            out.write(
                json.dumps(
                    {
                        "id": entry.id,
                        "title": entry.title,
                        "ecosystem": entry.ecosystem,
                        "kind": entry.kind,
                        "path": entry.path,
                    }
                )
                + "\n"
            )
    else:
        for entry in kb.entries:
            out.write(f"{entry.id:55} {entry.kind:9} {entry.title}\n")
    return 0


def cmd_eval(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Precision and recall of the matcher over labelled real issues, held to the ratchet."""
    from bot.evaluate import (
        default_eval_dir,
        evaluate,
        figures,
        improved,
        load_ratchet,
        per_class,
        regressions,
        report,
        save_ratchet,
    )

    directory = args.dir or default_eval_dir()
    if directory is None or not directory.is_dir():
        out.write(
            "eval skipped: no labelled issues found (../shared/eval/dev next to the repository); pass --dir\n"
        )
        return 0
    kb = load_kb_or_exit(args.knowledge, err)
    results = evaluate(kb, directory)
    out.write(report(results, area=args.area, verbose=args.verbose))
    if args.per_class:
        out.write("\nper class (right, wrong, missed):\n")
        for cid, right, wrong, missed in per_class(results):
            out.write(f"  {cid:60} {right:3} {wrong:3} {missed:3}\n")
    current = figures(results)
    out.write("figures: " + ", ".join(f"{k} {v}" for k, v in current.items()) + "\n")
    if args.ratchet is None:
        return 0
    best = load_ratchet(args.ratchet)
    problems = regressions(current, best)
    if problems:
        out.write("quality fell below the ratchet in " + str(args.ratchet) + ":\n")
        out.writelines(f"  {p}\n" for p in problems)
        return 1
    moved = improved(current, best)
    if moved != best:
        if args.update:
            save_ratchet(args.ratchet, moved)
            out.write(f"ratchet {args.ratchet} moved up\n")
        else:
            out.write(f"better than the ratchet: run with --update to record it in {args.ratchet}\n")
    else:
        out.write("at the ratchet\n")
    return 0


def cmd_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the webhook server until SIGTERM."""
    from bot.server import serve
    from bot.settings import load_settings

    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        print(f"linker-triage refuses to start: {exc}", file=err)
        return 2
    try:
        serve(settings)
    except KnowledgeError as exc:
        print(f"linker-triage refuses to start: {exc}", file=err)
        return 2
    return 0


def cmd_jobs(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Show recent jobs of the durable queue (failed ones with their reason)."""
    from bot.store import format_jobs, open_store

    url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL

    async def run() -> str:
        store = open_store(url)
        await store.open()
        try:
            return await format_jobs(store, args.state, args.limit)
        finally:
            await store.close()

    out.write(asyncio.run(run()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for `python -m bot`."""
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument(
        "--knowledge", type=Path, default=None, help="knowledge-base folder (default: knowledge/)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the webhook server on $PORT")
    serve.set_defaults(func=cmd_serve)

    match = sub.add_parser("match", help="print the comment the bot would post for issue texts or payloads")
    match.add_argument("--json", action="store_true", help="one JSON object per input (JSON Lines)")
    match.add_argument("paths", nargs="+", help="text/markdown file, .json webhook payload, or - for stdin")
    match.set_defaults(func=cmd_match)

    kb = sub.add_parser("kb", help="knowledge-base tools")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    check = kb_sub.add_parser("check", help="validate every entry and run its examples")
    check.set_defaults(func=cmd_kb_check)
    listing = kb_sub.add_parser("list", help="list the entries")
    listing.add_argument(
        "--markdown", action="store_true", help="the browsable catalogue (docs/knowledge.md)"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per entry")
    listing.set_defaults(func=cmd_kb_list)

    ev = sub.add_parser("eval", help="precision and recall over labelled issues")
    ev.add_argument("--dir", type=Path, default=None, help="folder of labelled YAML issues")
    ev.add_argument("--area", default=None, help="go, native, runtime or negatives")
    ev.add_argument("--verbose", action="store_true", help="show matched lines of every error")
    ev.add_argument("--per-class", action="store_true", help="right / wrong / missed per class")
    ev.add_argument(
        "--ratchet", type=Path, default=None, help="fail when quality falls below this file's figures"
    )
    ev.add_argument("--update", action="store_true", help="with --ratchet: record figures that got better")
    ev.set_defaults(func=cmd_eval)

    jobs = sub.add_parser("jobs", help="recent jobs of the delivery queue")
    jobs.add_argument("--state", default=None, help="queued, running, done or failed")
    jobs.add_argument("--limit", type=int, default=50)
    jobs.set_defaults(func=cmd_jobs)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Entry point of `python -m bot`."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args, out or sys.stdout, err or sys.stderr)
    return code
