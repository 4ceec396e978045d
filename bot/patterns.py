"""Linear-time pattern matching with RE2: every pattern compiled once, all scanned in one pass."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import re2

# Patterns with a large RE2 program (counted repetitions like .{0,300}) go into sets of their own, so
# that their DFA states do not multiply with those of the many small patterns. Measured on the whole
# knowledge base (554 patterns): one light set + one heavy set scan a 64 KB issue in ~1.5 ms and
# build logs at ~100 MB/s; a single pattern with a broad counted gap once cut that to 0.5 MB/s, hence
# the split (and the budget, which starts a new heavy set past it).
SET_GROUP_SIZE = 1000
HEAVY_PROGRAM_SIZE = 500
HEAVY_GROUP_BUDGET = 100_000
SET_MAX_MEM = 64 << 20
ONE_MAX_MEM = 8 << 20
CHUNK_BYTES = 64 << 10
MAX_HITS_PER_PATTERN = 40


def _options(max_mem: int) -> Any:
    options = re2.Options()
    options.max_mem = max_mem
    return options


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    # RE2 logs parse errors to fd 2 through absl; we report them ourselves.
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        sys.stderr.flush()
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def compile_error(pattern: str) -> str | None:
    """Why RE2 cannot run this pattern (backreferences, lookaround ...), or None when it can."""
    with _quiet_stderr():
        try:
            re2.compile(pattern, _options(ONE_MAX_MEM))
        except Exception as exc:  # re2 raises its own error type for every parse failure
            message = str(exc)
            return message[2:-1] if message.startswith("b'") else message
    return None


def group_names(pattern: str) -> set[str]:
    """Named groups of a pattern (empty when it does not compile)."""
    with _quiet_stderr():
        try:
            return set(re2.compile(pattern, _options(ONE_MAX_MEM)).groupindex)
        except Exception:
            return set()


def compile_one(pattern: str) -> Any:
    """One compiled RE2 pattern for searching a single line."""
    return re2.compile(pattern, _options(ONE_MAX_MEM))


@dataclass(frozen=True)
class Hit:
    """Pattern `index` matched line `line` (0-based) at columns [start, end) with these named groups."""

    index: int
    line: int
    groups: dict[str, str]
    start: int = 0
    end: int = 0


class PatternSet:
    """All patterns of the knowledge base in one RE2 set; scans text in time linear in its length."""

    def __init__(self, pattern_list: Sequence[str], hit_limits: Sequence[int] | None = None) -> None:
        self.patterns = list(pattern_list)
        self.scanned_bytes = 0  # total bytes handed to the RE2 sets: the work is linear in this
        # How many hits of each pattern are worth locating (a context rule needs one or a few).
        self.hit_limits = (
            list(hit_limits) if hit_limits is not None else [MAX_HITS_PER_PATTERN] * len(self.patterns)
        )
        self._sets: list[tuple[list[int], Any]] = []  # (global indexes of the group's patterns, RE2 set)
        self._multiline = []
        self._single = []
        with _quiet_stderr():
            for pattern in self.patterns:
                self._multiline.append(re2.compile(f"(?m){pattern}", _options(ONE_MAX_MEM)))
                self._single.append(re2.compile(pattern, _options(ONE_MAX_MEM)))
            for members in _groups([compiled.programsize for compiled in self._single]):
                group = re2.Set.SearchSet(_options(SET_MAX_MEM))
                for index in members:
                    # (?m) so that ^ and $ keep meaning start and end of a line inside a chunk.
                    group.Add(f"(?m:{self.patterns[index]})")
                group.Compile()
                self._sets.append((members, group))

    def _match(self, chunk: bytes) -> list[int]:
        found: list[int] = []
        for members, group in self._sets:
            found.extend(members[index] for index in group.Match(chunk) or ())
        return found

    def scan(self, lines: Sequence[str]) -> list[Hit]:
        """Every (pattern, line) hit with its named groups, at most the pattern's hit limit.

        Lines must not contain newlines (extraction splits on them): they are joined once and scanned
        in ~64 KiB chunks cut at line ends, so no Python work is done per line."""
        if not self.patterns or not lines:
            return []
        data = "\n".join(lines).encode("utf-8", "replace")
        if data.count(b"\n") != len(lines) - 1:  # a caller passed a line with a line break in it
            data = "\n".join(line.replace("\n", " ") for line in lines).encode("utf-8", "replace")
        hits: list[Hit] = []
        counts: dict[int, int] = {}
        first = 0  # index of the chunk's first line
        start = 0
        size = len(data)
        while start <= size:
            end = _chunk_end(data, start)
            chunk = data[start:end]
            self.scanned_bytes += len(chunk)
            for index in self._match(chunk):
                limit = self.hit_limits[index]
                if counts.get(index, 0) >= limit:
                    continue
                for hit in self._locate(index, first, chunk, lines):
                    hits.append(hit)
                    counts[index] = counts.get(index, 0) + 1
                    if counts[index] >= limit:
                        break
            first += chunk.count(b"\n") + 1
            start = end + 1
        hits.sort(key=lambda h: (h.line, h.index))
        return hits

    def _locate(self, index: int, first: int, chunk: bytes, lines: Sequence[str]) -> Iterator[Hit]:
        """The hits of one pattern in a chunk; a match spanning lines is redone line by line."""
        row, counted_to = 0, 0  # matches come in order: count line ends incrementally
        for match in self._multiline[index].finditer(chunk):
            begin, finish = match.start(), match.end()
            row += chunk.count(b"\n", counted_to, begin)
            counted_to = begin
            if chunk.find(b"\n", begin, finish) < 0:
                line_start = chunk.rfind(b"\n", 0, begin) + 1
                yield _hit(index, first + row, chunk[line_start:begin], match)
                continue
            # `[^x]` and `\s` can cross a line end inside a chunk; signatures are one-line patterns.
            last = row + chunk.count(b"\n", begin, max(finish - 1, begin))
            for covered in range(row, last + 1):
                line_bytes = lines[first + covered].encode("utf-8", "replace")
                single = self._single[index].search(line_bytes)
                if single is not None:
                    yield _hit(index, first + covered, line_bytes[: single.start()], single)


def _chunk_end(data: bytes, start: int) -> int:
    """Where the chunk starting at `start` ends: at a line end near CHUNK_BYTES, or the data's end."""
    end = start + CHUNK_BYTES
    if end >= len(data):
        return len(data)
    cut = data.rfind(b"\n", start, end)
    if cut > start:
        return cut
    cut = data.find(b"\n", end)  # one line longer than a chunk: keep it whole
    return len(data) if cut < 0 else cut


def _groups(sizes: Sequence[int]) -> list[list[int]]:
    """Pattern indexes split into set groups: light ones by count, heavy ones by program size."""
    light = [i for i, size in enumerate(sizes) if size <= HEAVY_PROGRAM_SIZE]
    groups = [light[i : i + SET_GROUP_SIZE] for i in range(0, len(light), SET_GROUP_SIZE)]
    current: list[int] = []
    budget = 0
    for index, size in enumerate(sizes):
        if size <= HEAVY_PROGRAM_SIZE:
            continue
        if current and budget + size > HEAVY_GROUP_BUDGET:
            groups.append(current)
            current, budget = [], 0
        current.append(index)
        budget += size
    if current:
        groups.append(current)
    return groups


def _hit(index: int, line: int, before: bytes, match: Any) -> Hit:
    groups = {k: v.decode("utf-8", "replace") for k, v in match.groupdict().items() if v is not None}
    start = len(before.decode("utf-8", "replace"))
    length = len(match.group(0).decode("utf-8", "replace"))
    return Hit(index, line, groups, start, start + length)
