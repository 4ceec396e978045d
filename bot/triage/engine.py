"""One linear pass of every knowledge-base pattern over the lines, then per-entry scoring."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.knowledge import Entry, KnowledgeBase
from bot.patterns import MAX_HITS_PER_PATTERN, PatternSet
from bot.triage import context as ctx
from bot.triage.extract import Line

# Confidence adjustments by where the matched line sits.
REGION_PENALTY = {"code": 0.0, "quote": 0.0, "prose": 0.05, "title": 0.1}
# An error quoted as `inline code` inside a sentence is usually talked about, not pasted from a log.
INLINE_MENTION_PENALTY = 0.12
EXTRA_SIGNATURE_BONUS = 0.05

# Signs that the text is not a report of a failure but its fix or a discussion of it.
CAUTION_RULES: list[tuple[str, str, float]] = [
    ("states-fix", r"(?i)^(?:fix(?:es|ed)?|close[sd]?|resolve[sd]?)\s+#\d+", 0.25),
    # Only counted in pull requests: a PR titled "Fix link error" is the fix, not a report.
    ("pr-fix-title", r"(?i)\b(?:fix(?:e[sd])?|resolve[sd]?|workaround for)\b", 0.2),
    # Commit-style titles ("fix(build): ...") only: a body line "Fix: set X" is often the reporter's try.
    ("title-states-fix", r"(?i)^(?:fix|feat|chore|build|ci)(?:\([^)]{0,60}\))?!?:\s", 0.25),
    (
        "states-fix",
        r"(?i)^#{1,4}\s*(?:summary|changes|what (?:this|does this) pr|motivation|test plan)\b",
        0.15,
    ),
    ("states-fix", r"(?i)\bthis (?:pr|pull request|patch|commit)\b", 0.15),
]


@dataclass
class RawHit:
    """A signature of an entry that hit a line."""

    signature: int
    line: Line
    groups: dict[str, str]
    start: int = 0  # columns of the match in the line
    end: int = 0


@dataclass
class EntryHits:
    """What the scan found for one entry."""

    entry: Entry
    signatures: list[RawHit] = field(default_factory=list)
    requires_met: set[int] = field(default_factory=set)
    excludes_hit: list[tuple[int, Line]] = field(default_factory=list)
    detected_versions: dict[int, str] = field(default_factory=dict)


@dataclass
class ScanResult:
    """Per-entry hits, the reporter's context and the caution signals."""

    entries: list[EntryHits]
    context: ctx.Context
    cautions: list[tuple[str, float, Line]]


class CompiledKnowledgeBase:
    """The knowledge base turned into one RE2 set (plus context and caution rules)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        patterns: list[str] = []
        # Each slot says what pattern index i is: (kind, entry index, item index).
        self.slots: list[tuple[str, int, int]] = []
        for e_index, entry in enumerate(kb.entries):
            for s_index, sig in enumerate(entry.signatures):
                patterns.append(sig.pattern)
                self.slots.append(("sig", e_index, s_index))
            for r_index, cond in enumerate(entry.requires):
                patterns.append(cond.pattern)
                self.slots.append(("req", e_index, r_index))
            for x_index, cond in enumerate(entry.excludes):
                patterns.append(cond.pattern)
                self.slots.append(("exc", e_index, x_index))
            for f_index, fixed in enumerate(entry.fixed_in):
                if fixed.detect:
                    patterns.append(fixed.detect)
                    self.slots.append(("detect", e_index, f_index))
        for f_index, rule in enumerate(ctx.FACT_RULES):
            patterns.append(rule[2])
            self.slots.append(("fact", -1, f_index))
        for v_index, vrule in enumerate(ctx.VERSION_RULES):
            patterns.append(vrule[1])
            self.slots.append(("version", -1, v_index))
        for c_index, crule in enumerate(CAUTION_RULES):
            patterns.append(crule[1])
            self.slots.append(("caution", -1, c_index))
        limits = {"sig": MAX_HITS_PER_PATTERN, "fact": 5, "caution": 5}
        self.pattern_set = PatternSet(patterns, [limits.get(kind, 1) for kind, _, _ in self.slots])

    def scan(self, lines: Sequence[Line], *, workers: int = 1) -> ScanResult:
        """Run every pattern over the lines once and sort the hits by what they belong to."""
        hits = self.pattern_set.scan([line.text for line in lines], workers=workers)
        per_entry: dict[int, EntryHits] = {}
        fact_hits: list[int] = []
        version_hits: list[tuple[int, dict[str, str]]] = []
        cautions: list[tuple[str, float, Line]] = []
        for hit in hits:
            kind, e_index, item = self.slots[hit.index]
            line = lines[hit.line]
            if kind == "fact":
                fact_hits.append(item)
                continue
            if kind == "version":
                version_hits.append((item, hit.groups))
                continue
            if kind == "caution":
                if CAUTION_RULES[item][0] in ("pr-fix-title", "title-states-fix") and line.region != "title":
                    continue
                if line.region in ("prose", "title"):
                    name, _, penalty = CAUTION_RULES[item]
                    cautions.append((name, penalty, line))
                continue
            entry_hits = per_entry.get(e_index)
            if entry_hits is None:
                entry_hits = per_entry[e_index] = EntryHits(self.kb.entries[e_index])
            if kind == "sig":
                entry_hits.signatures.append(RawHit(item, line, hit.groups, hit.start, hit.end))
            elif kind == "req":
                entry_hits.requires_met.add(item)
            elif kind == "exc":
                entry_hits.excludes_hit.append((item, line))
            elif kind == "detect" and "version" in hit.groups:
                entry_hits.detected_versions.setdefault(item, hit.groups["version"])
        found = [per_entry[i] for i in sorted(per_entry) if per_entry[i].signatures]
        return ScanResult(found, ctx.build_context(fact_hits, version_hits), cautions)
