"""Benchmark: the whole knowledge base's scan against GNU grep on the same patterns and logs.

Run: .venv/bin/python bench/scan_vs_grep.py [--sizes 1 10 100]

For generated build logs of each size it reports, in one run:
- `LC_ALL=C grep -E -c -f PATTERNS LOG` throughput (its start-up and pattern compilation, measured on an
  empty file, subtracted);
- our scan (PatternSet.scan, the engine's one pass over all patterns, extraction excluded) on the very
  same patterns, translated from RE2 to POSIX ERE; patterns that ERE cannot express are left out on
  both sides and counted;
- our scan of the whole knowledge base (every pattern, RE2 syntax) for reference;
then the median triage latency of a 4 KB and a 64 KB issue, and the peak memory of this process.
Timings vary with the machine: never assert them in tests.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.match_speed import build_log
from bot.knowledge import default_knowledge_dir, load_knowledge_base
from bot.patterns import PatternSet
from bot.triage import compile_knowledge_base, triage
from bot.triage.model import IssueText

_CLASS_ESCAPES = {"d": "0-9", "w": "[:alnum:]_", "s": "[:space:]"}
_ESCAPES = {"d": "[0-9]", "D": "[^0-9]"}


def to_ere(pattern: str) -> str | None:
    """The pattern in GNU ERE, or None when ERE cannot say it (inline flags, lookaround ...)."""
    out: list[str] = []
    i = 0
    in_class = False
    while i < len(pattern):
        char = pattern[i]
        if in_class:
            if char == "\\" and i + 1 < len(pattern):
                nxt = pattern[i + 1]
                if nxt in _CLASS_ESCAPES:
                    out.append(_CLASS_ESCAPES[nxt])
                elif nxt in "\\]^-":
                    return None  # literal ] ^ - \ inside a bracket need reordering: skip the pattern
                elif nxt.isalnum():
                    return None
                else:
                    out.append(nxt)
                i += 2
                continue
            if char == "]":
                in_class = False
            out.append(char)
            i += 1
            continue
        if char == "[":
            in_class = True
            out.append(char)
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                out.append("]")
                i += 1
            i += 1
            continue
        if char == "(" and pattern[i + 1 : i + 2] == "?":
            if pattern.startswith("(?:", i):
                out.append("(")
                i += 3
                continue
            named = re.match(r"\(\?P<\w+>", pattern[i:])
            if named:
                out.append("(")
                i += named.end()
                continue
            return None  # inline flags, lookaround
        if char in "*+?}" and pattern[i + 1 : i + 2] == "?":
            out.append(char)  # lazy and greedy match the same lines
            i += 2
            continue
        if char == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in "wWsSb" or not nxt.isalnum():
                out.append("\\" + nxt)
            else:
                return None
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def grep_seconds(patterns_file: Path, log: Path, copies: int) -> tuple[float, int]:
    """Seconds grep needs per pass over the log, start-up excluded, and its count of matching lines.

    One grep process reads the log `copies` times (the file named repeatedly), so that a small log's
    time is not lost in the process start-up and pattern compilation, measured on an empty file."""
    env = dict(os.environ, LC_ALL="C")
    empty = log.with_suffix(".empty")
    empty.write_bytes(b"")

    def run(paths: list[Path]) -> tuple[float, str]:
        start = time.perf_counter()
        proc = subprocess.run(
            ["grep", "-E", "-c", "-h", "-f", str(patterns_file), *map(str, paths)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return time.perf_counter() - start, proc.stdout.split("\n", 1)[0].strip()

    startup = min(run([empty])[0] for _ in range(3))
    elapsed, count = min(run([log] * copies) for _ in range(2))
    return max(elapsed - startup, 1e-9) / copies, int(count or 0)


def our_seconds(patterns: PatternSet, lines: list[str]) -> tuple[float, int]:
    """Best of two scans (the DFA warms up on the first), and the number of distinct matching lines."""
    best = float("inf")
    hits: set[int] = set()
    for _ in range(2):
        start = time.perf_counter()
        found = patterns.scan(lines)
        best = min(best, time.perf_counter() - start)
        hits = {h.line for h in found}
    return best, len(hits)


def median_ms(text: str, kb: object, runs: int = 100) -> float:
    """Median wall time of one triage of an issue body."""
    issue = IssueText(title="Build fails", body=text)
    for _ in range(5):
        triage(issue, kb)  # type: ignore[arg-type]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        triage(issue, kb)  # type: ignore[arg-type]
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 10, 100], help="log sizes in MB")
    args = parser.parse_args()

    kb = load_knowledge_base(default_knowledge_dir())
    everything = compile_knowledge_base(kb).pattern_set
    translated = [(p, to_ere(p)) for p in everything.patterns]
    kept = [(p, ere) for p, ere in translated if ere is not None]
    print(
        f"knowledge base: {len(kb.entries)} entries, {len(everything.patterns)} patterns; "
        f"{len(kept)} expressible in ERE are compared with grep"
    )
    ours_same = PatternSet([p for p, _ in kept])
    with tempfile.TemporaryDirectory() as tmp:
        patterns_file = Path(tmp) / "patterns.ere"
        patterns_file.write_text("\n".join(ere for _, ere in kept if ere) + "\n", encoding="utf-8")
        print(f"{'log':>8} {'grep -E -f':>14} {'ours, same':>14} {'ratio':>7} {'ours, whole KB':>16}")
        for size in args.sizes:
            text = build_log(size)
            log = Path(tmp) / f"build-{size:g}MB.log"
            log.write_text(text, encoding="utf-8")
            lines = text.split("\n")
            mb = len(text.encode()) / 1e6
            grep_s, grep_lines = grep_seconds(patterns_file, log, copies=max(1, round(50 / max(size, 0.001))))
            ours_s, ours_lines = our_seconds(ours_same, lines)
            whole_s, _ = our_seconds(everything, lines)
            print(
                f"{mb:6.0f}MB {mb / grep_s:9.1f} MB/s {mb / ours_s:9.1f} MB/s {grep_s / ours_s:6.2f}x "
                f"{mb / whole_s:11.1f} MB/s   (matching lines: grep {grep_lines}, ours {ours_lines})"
            )
            del text, lines
    for label, size in (("4 KB", 0.004), ("64 KB", 0.064)):
        print(f"triage of a {label} issue: median {median_ms(build_log(size), kb):.2f} ms")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (RSS) of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
