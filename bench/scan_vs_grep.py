"""Benchmark: the whole knowledge base's scan against GNU grep on the same patterns and logs.

Run: .venv/bin/python bench/scan_vs_grep.py [--sizes 1 10 100]

For generated build logs of each size it reports, in one run:
- `LC_ALL=C grep -E -c -f PATTERNS LOG` throughput (its start-up and pattern compilation, measured on an
  empty file, subtracted);
- our scan (PatternSet.scan_bytes, the engine's one pass over all patterns, extraction excluded) of
  the same bytes with the very same patterns, translated from RE2 to POSIX ERE (patterns that ERE
  cannot express are left out on both sides and counted), on one thread and on two (RE2 releases
  the GIL: `python -m bot match` uses every core for large logs; grep uses one);
- our scan of the whole knowledge base (every pattern, RE2 syntax) for reference;
Each figure is the best of --rounds rounds taken in turn (grep, ours, ours on two threads ...), so that
a slow moment of a shared machine does not fall on one side only.
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
    elapsed, count = run([log] * copies)
    return max(elapsed - startup, 1e-9) / copies, int(count or 0)


def our_seconds(patterns: PatternSet, data: bytes, workers: int) -> tuple[float, int]:
    """Seconds of one scan of the bytes, and the number of distinct matching lines."""
    start = time.perf_counter()
    found = patterns.scan_bytes(data, workers=workers)
    return time.perf_counter() - start, len({h.line for h in found})


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
    parser.add_argument("--rounds", type=int, default=5, help="rounds per size; the best of each is shown")
    args = parser.parse_args()

    kb = load_knowledge_base(default_knowledge_dir())
    everything = compile_knowledge_base(kb).pattern_set
    translated = [
        (p, to_ere(p), limit) for p, limit in zip(everything.patterns, everything.hit_limits, strict=True)
    ]
    kept = [(p, ere, limit) for p, ere, limit in translated if ere is not None]
    print(
        f"knowledge base: {len(kb.entries)} entries, {len(everything.patterns)} patterns; "
        f"{len(kept)} expressible in ERE are compared with grep"
    )
    # The same patterns with the hit limits they have in the engine (a context rule needs a few hits).
    ours_same = PatternSet([p for p, _, _ in kept], [limit for _, _, limit in kept])
    with tempfile.TemporaryDirectory() as tmp:
        patterns_file = Path(tmp) / "patterns.ere"
        patterns_file.write_text("\n".join(ere for _, ere, _ in kept if ere) + "\n", encoding="utf-8")
        print(
            f"{'log':>6} {'grep -E -f':>12} {'ours, same':>12} {'ratio':>6} {'2 threads':>12} {'ratio':>6}"
            f" {'whole KB':>12} {'2 threads':>12}"
        )
        for size in args.sizes:
            data = build_log(size).encode()
            log = Path(tmp) / f"build-{size:g}MB.log"
            log.write_bytes(data)
            mb = len(data) / 1e6
            copies = max(1, round(50 / max(size, 0.001)))
            for pattern_set in (ours_same, everything):  # warm the DFAs (and compile set variants)
                pattern_set.scan_bytes(data)
            runs = {
                "grep": (None, 1),
                "same": (ours_same, 1),
                "same2": (ours_same, 2),
                "whole": (everything, 1),
                "whole2": (everything, 2),
            }
            best: dict[str, float] = {}
            counts: dict[str, int] = {}
            for _ in range(args.rounds):
                for name, (pattern_set, workers) in runs.items():
                    if pattern_set is None:
                        seconds, count = grep_seconds(patterns_file, log, copies)
                    else:
                        seconds, count = our_seconds(pattern_set, data, workers)
                    best[name] = min(best.get(name, float("inf")), seconds)
                    counts[name] = count
            print(
                f"{mb:4.0f}MB {mb / best['grep']:7.1f} MB/s {mb / best['same']:7.1f} MB/s "
                f"{best['grep'] / best['same']:5.2f}x {mb / best['same2']:7.1f} MB/s "
                f"{best['grep'] / best['same2']:5.2f}x {mb / best['whole']:7.1f} MB/s "
                f"{mb / best['whole2']:7.1f} MB/s   (matching lines: grep {counts['grep']}, "
                f"ours {counts['same']})"
            )
            del data
    for label, size in (("4 KB", 0.004), ("64 KB", 0.064)):
        print(f"triage of a {label} issue: median {median_ms(build_log(size), kb):.2f} ms")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (RSS) of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
