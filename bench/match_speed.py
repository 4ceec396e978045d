"""Benchmark: matching throughput on large logs and hostile text against the whole knowledge base.

Run: .venv/bin/python bench/match_speed.py [--mb 10]
Reports MB/s for (1) a 10 MB build log with a linker error at the end, (2) backtracking bait
(60,000 characters of `(((`, `aaaa!` and nested-quantifier food) followed by a real error, and
(3) the time to load and compile the knowledge base. Never run from the tests: timings vary.
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc

from bot.knowledge import default_knowledge_dir, load_knowledge_base
from bot.triage import compile_knowledge_base, triage
from bot.triage.model import IssueText

ERROR = (
    "/usr/bin/ld: cannot find -lssl: No such file or directory\ncollect2: error: ld returned 1 exit status\n"
)


def build_log(megabytes: float, seed: int = 1) -> str:
    """A realistic-looking compile log of about `megabytes` MB ending in a linker error."""
    rng = random.Random(seed)
    words = [
        "gcc",
        "-O2",
        "-Wall",
        "-fPIC",
        "-I/usr/include",
        "src/module.c",
        "-o",
        "build/obj.o",
        "CC",
        "LD",
        "warning:",
        "unused",
        "variable",
        "[-Wunused-variable]",
        "note:",
        "in",
        "expansion",
        "of",
        "macro",
    ]
    lines = []
    size = 0
    target = int(megabytes * 1_000_000)
    while size < target:
        line = f"2024-05-01T10:00:{rng.randint(10, 59)}.1234567Z " + " ".join(
            rng.choice(words) for _ in range(14)
        )
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n" + ERROR


def bait(chars: int = 60_000) -> str:
    """Text that makes backtracking engines blow up, followed by a real error."""
    unit = "a" * 40 + "!" + "(" * 20 + "x" * 30 + " " * 30 + "\n"
    return (unit * (chars // len(unit) + 1))[:chars] + "\n" + ERROR


def timed(label: str, text: str, kb: object, cap: int) -> None:
    """Wall and CPU time of one triage; CPU time is steadier on a busy 2-core machine."""
    start, cpu = time.perf_counter(), time.process_time()
    result = triage(IssueText(title="", body=text), kb, cap=cap)  # type: ignore[arg-type]
    elapsed, cpu_elapsed = time.perf_counter() - start, time.process_time() - cpu
    mb = len(text.encode()) / 1e6
    print(
        f"{label:40} {mb:6.2f} MB  wall {elapsed * 1000:7.1f} ms  cpu {cpu_elapsed * 1000:7.1f} ms  "
        f"{mb / max(cpu_elapsed, 1e-9):6.1f} MB/s cpu  -> {result.decision} {result.class_ids}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=10.0)
    args = parser.parse_args()

    tracemalloc.start()
    start = time.perf_counter()
    kb = load_knowledge_base(default_knowledge_dir())
    compiled = compile_knowledge_base(kb)
    load_s = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"knowledge base: {len(kb.entries)} entries, {len(compiled.pattern_set.patterns)} patterns, "
        f"loaded and compiled in {load_s * 1000:.0f} ms (peak Python heap {peak / 1e6:.1f} MB)"
    )
    log = build_log(args.mb)
    timed(f"{args.mb:g} MB build log (cold DFA)", log, kb, cap=64 << 20)
    timed(f"{args.mb:g} MB build log (warm, as in a server)", log, kb, cap=64 << 20)
    timed("60,000-char backtracking bait + error", bait(), kb, cap=65_536)
    timed("issue-sized body (65 KB log)", build_log(0.065), kb, cap=65_536)


if __name__ == "__main__":
    main()
