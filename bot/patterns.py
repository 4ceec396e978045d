"""Linear-time pattern matching with RE2: every pattern compiled once, all scanned in one pass."""

from __future__ import annotations

import os
import sys
import threading
from bisect import bisect_right
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import re2

from bot.widen import widen_repeats

# Every pattern goes into the scan set widened (bot.widen: `.{0,300}` becomes `.*`), so the set stays
# small; the exact pattern then locates the hits in the chunks the set names. Patterns whose widened
# program is still large go into sets of their own, so that their DFA states do not multiply with
# those of the many small patterns (one broad counted gap once cut a whole scan to 0.5 MB/s). Each set
# costs a pass over the text: the whole knowledge base, widened, fits in one (largest program: ~550).
SET_GROUP_SIZE = 1000
HEAVY_PROGRAM_SIZE = 1000
HEAVY_GROUP_BUDGET = 100_000
SET_MAX_MEM = 64 << 20
ONE_MAX_MEM = 8 << 20
CHUNK_BYTES = 64 << 10
MAX_HITS_PER_PATTERN = 40
# A pattern that has reached its hit limit still costs the set's DFA work at each of its matches (an
# insertion per occurrence, and `\bgcc\b` is on every other line of a build log). When such patterns
# keep firing, the rest of a large input is scanned by a set without them. A variant not compiled yet
# (~30 ms for the whole knowledge base) is only built when this much input is left to pay for it.
VARIANT_MIN_REMAINING = 4 << 20
MAX_VARIANTS = 4
# Inputs this large are matched on several threads (RE2 releases the GIL); smaller ones are not worth
# the threads.
PARALLEL_MIN_BYTES = 1 << 20
PARALLEL_BATCH_BYTES = 1 << 20


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


SetGroups = list[tuple[list[int], Any]]  # (global indexes of a set's patterns, the RE2 set)


class PatternSet:
    """All patterns of the knowledge base in one RE2 set; scans text in time linear in its length."""

    def __init__(self, pattern_list: Sequence[str], hit_limits: Sequence[int] | None = None) -> None:
        self.patterns = list(pattern_list)
        self.scanned_bytes = 0  # total bytes handed to the RE2 sets: the work is linear in this
        # How many hits of each pattern are worth locating (a context rule needs one or a few).
        self.hit_limits = (
            list(hit_limits) if hit_limits is not None else [MAX_HITS_PER_PATTERN] * len(self.patterns)
        )
        self._multiline = []
        self._single = []
        with _quiet_stderr():
            for pattern in self.patterns:
                self._multiline.append(re2.compile(f"(?m){pattern}", _options(ONE_MAX_MEM)))
                self._single.append(re2.compile(pattern, _options(ONE_MAX_MEM)))
            self._named = [bool(compiled.groupindex) for compiled in self._single]
            self._widened = [widen_repeats(pattern) for pattern in self.patterns]
            self._widened_sizes = [
                re2.compile(widened, _options(ONE_MAX_MEM)).programsize for widened in self._widened
            ]
            self._full = self._compile_sets(frozenset())
        self._variants: OrderedDict[frozenset[int], SetGroups] = OrderedDict()
        self._variants_lock = threading.Lock()

    def _compile_sets(self, excluded: frozenset[int]) -> SetGroups:
        """RE2 sets over the widened patterns, leaving out `excluded`."""
        kept = [index for index in range(len(self.patterns)) if index not in excluded]
        sets: SetGroups = []
        with _quiet_stderr():
            for group in _groups([self._widened_sizes[index] for index in kept]):
                members = [kept[position] for position in group]
                compiled = re2.Set.SearchSet(_options(SET_MAX_MEM))
                for index in members:
                    # (?m) so that ^ and $ keep meaning start and end of a line inside a chunk.
                    compiled.Add(f"(?m:{self._widened[index]})")
                compiled.Compile()
                sets.append((members, compiled))
        return sets

    def _variant(self, excluded: frozenset[int], remaining: int) -> SetGroups | None:
        """The sets without the `excluded` patterns: cached, or built when enough input is left."""
        with self._variants_lock:
            cached = self._variants.get(excluded)
            if cached is not None:
                self._variants.move_to_end(excluded)
                return cached
            if remaining < VARIANT_MIN_REMAINING:
                return None
            built = self._compile_sets(excluded)
            self._variants[excluded] = built
            while len(self._variants) > MAX_VARIANTS:
                self._variants.popitem(last=False)
            return built

    def scan(self, lines: Sequence[str], *, workers: int = 1) -> list[Hit]:
        """Every (pattern, line) hit with its named groups, at most the pattern's hit limit.

        Lines must not contain newlines (extraction splits on them; one that does is scanned with the
        break made a space): they are joined once and scanned as one text."""
        if not self.patterns or not lines:
            return []
        data = "\n".join(lines).encode("utf-8", "replace")
        if data.count(b"\n") != len(lines) - 1:
            data = "\n".join(line.replace("\n", " ") for line in lines).encode("utf-8", "replace")
        return self.scan_bytes(data, workers=workers)

    def scan_bytes(self, data: bytes, *, workers: int = 1) -> list[Hit]:
        """Every hit in UTF-8 text whose lines end with `\\n`; line numbers count from 0.

        The text is scanned in ~64 KiB chunks cut at line ends, so no Python work is done per line;
        with `workers` > 1 a large text's chunks are matched on that many threads, and the hits are
        taken in chunk order, so the result does not depend on the threads."""
        if not self.patterns:
            return []
        pool = ThreadPoolExecutor(workers) if workers > 1 and len(data) >= PARALLEL_MIN_BYTES else None
        spans = _chunk_spans(data)
        # The first chunk is matched alone: the patterns it saturates (gcc, linux ...) leave the set
        # before the threads take on the rest.
        batches = [spans[:1], *_batches(spans[1:], PARALLEL_BATCH_BYTES if pool else 0)]
        sets, excluded = self._full, frozenset[int]()
        hits: list[Hit] = []
        counts: dict[int, int] = {}
        # Line ends before `counted_to`: on one thread counted only up to chunks with hits (counting
        # costs ~1 ms per MB), on several counted by the threads.
        counted_to, lines_before = 0, 0
        pending: deque[Future[list[tuple[list[int], int]]] | partial[list[tuple[list[int], int]]]] = deque()
        submitted = 0
        try:
            for done, batch in enumerate(batches):
                ahead = 2 * workers if pool is not None and done > 0 else 1
                while submitted < len(batches) and len(pending) < ahead:
                    work = partial(_match_batch, sets, data, batches[submitted], pool is not None)
                    pending.append(pool.submit(work) if pool else work)
                    submitted += 1
                result = pending.popleft()
                found_per_chunk = result.result() if isinstance(result, Future) else result()
                for (start, end), (found, line_ends) in zip(batch, found_per_chunk, strict=True):
                    self.scanned_bytes += end - start
                    chunk: bytes | None = None
                    # A pattern that is or becomes saturated here may be one that fires on every line.
                    saturating = False
                    for index in found:
                        limit = self.hit_limits[index]
                        if counts.get(index, 0) >= limit:
                            saturating = True
                            continue
                        if chunk is None:
                            chunk = data[start:end]
                            rows = _Rows(chunk)
                            lines_before += data.count(b"\n", counted_to, start)
                            counted_to = start
                        for hit in self._locate(index, lines_before, chunk, rows):
                            hits.append(hit)
                            counts[index] = counts.get(index, 0) + 1
                            if counts[index] >= limit:
                                saturating = True
                                break
                    if saturating:
                        saturated = frozenset(i for i, n in counts.items() if n >= self.hit_limits[i])
                        if saturated != excluded:
                            variant = self._variant(saturated, len(data) - end)
                            if variant is not None:
                                sets, excluded = variant, saturated
                    if line_ends >= 0 and counted_to == start:  # counted on a thread
                        lines_before += line_ends + 1
                        counted_to = end + 1
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        hits.sort(key=lambda h: (h.line, h.index))
        return hits

    def _locate(self, index: int, first: int, chunk: bytes, rows: _Rows) -> Iterator[Hit]:
        """The hits of one pattern in a chunk; a match spanning lines is redone line by line."""
        named = self._named[index]
        for match in self._multiline[index].finditer(chunk):
            begin, finish = match.start(), match.end()
            row = rows.at(begin)
            line_start = chunk.rfind(b"\n", 0, begin) + 1
            if chunk.find(b"\n", begin, finish) < 0:
                yield _hit(index, first + row, chunk[line_start:begin], match, named)
                continue
            # `[^x]` and `\s` can cross a line end inside a chunk; signatures are one-line patterns.
            last = row + chunk.count(b"\n", begin, max(finish - 1, begin))
            for covered in range(row, last + 1):
                line_end = chunk.find(b"\n", line_start)
                line_end = len(chunk) if line_end < 0 else line_end
                line_bytes = chunk[line_start:line_end]
                single = self._single[index].search(line_bytes)
                if single is not None:
                    yield _hit(index, first + covered, line_bytes[: single.start()], single, named)
                line_start = line_end + 1


class _Rows:
    """Line numbers of offsets in one chunk, counted once however many patterns hit in it."""

    def __init__(self, chunk: bytes) -> None:
        self._chunk = chunk
        self._offsets = [0]  # sorted checkpoints: offset -> line ends before it
        self._rows = [0]

    def at(self, offset: int) -> int:
        """How many line ends the chunk has before `offset`."""
        nearest = bisect_right(self._offsets, offset) - 1
        known = self._offsets[nearest]
        if known == offset:
            return self._rows[nearest]
        row = self._rows[nearest] + self._chunk.count(b"\n", known, offset)
        self._offsets.insert(nearest + 1, offset)
        self._rows.insert(nearest + 1, row)
        return row


def _match(sets: SetGroups, chunk: memoryview) -> list[int]:
    """Indexes of the patterns whose widened form matches somewhere in the chunk."""
    found: list[int] = []
    for members, compiled in sets:
        found.extend(members[index] for index in compiled.Match(chunk) or ())
    return found


def _match_batch(
    sets: SetGroups, data: bytes, batch: list[tuple[int, int]], count_lines: bool
) -> list[tuple[list[int], int]]:
    """`_match` for each chunk of a batch, with the chunk's line ends when asked (-1 otherwise).

    On threads, one task per batch keeps the overhead low, and counting here (bytes.count holds the
    GIL, RE2 does not) overlaps with the other threads' matching."""
    view = memoryview(data)
    return [
        (_match(sets, view[start:end]), data.count(b"\n", start, end) if count_lines else -1)
        for start, end in batch
    ]


def _batches(spans: list[tuple[int, int]], batch_bytes: int) -> list[list[tuple[int, int]]]:
    """Consecutive chunks grouped until a group holds `batch_bytes` (0: one chunk per group)."""
    batches: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    size = 0
    for span in spans:
        current.append(span)
        size += span[1] - span[0]
        if size >= batch_bytes:
            batches.append(current)
            current, size = [], 0
    if current:
        batches.append(current)
    return batches


def _chunk_spans(data: bytes) -> list[tuple[int, int]]:
    """The (start, end) of each chunk, cut at line ends; the line end itself is in no chunk."""
    spans = []
    start = 0
    while start <= len(data):
        end = _chunk_end(data, start)
        spans.append((start, end))
        start = end + 1
    return spans


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


def _hit(index: int, line: int, before: bytes, match: Any, named: bool) -> Hit:
    groups = (
        {k: v.decode("utf-8", "replace") for k, v in match.groupdict().items() if v is not None}
        if named
        else {}
    )
    start = len(before.decode("utf-8", "replace"))
    length = len(match.group(0).decode("utf-8", "replace"))
    return Hit(index, line, groups, start, start + length)
