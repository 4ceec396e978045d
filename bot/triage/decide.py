"""Score the entries that matched, pick the diagnosis, and decide whether to comment, ask or stay silent."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.knowledge import Entry
from bot.triage.engine import (
    EXTRA_SIGNATURE_BONUS,
    INLINE_MENTION_PENALTY,
    REGION_PENALTY,
    EntryHits,
    ScanResult,
)
from bot.triage.model import Decision, Evidence, IssueText

DEFAULT_MIN_CONFIDENCE = 0.70
MAX_DIAGNOSES = 2
MAX_EVIDENCE_LINES = 6
PULL_REQUEST_PENALTY = 0.15
TOOLCHAIN_REPO_PENALTY = 0.10
# The toolchains' own trackers: a link error there is usually a bug report about the tool itself.
TOOLCHAIN_REPOS = frozenset(
    {
        "golang/go",
        "llvm/llvm-project",
        "rui314/mold",
        "rust-lang/rust",
        "gcc-mirror/gcc",
        "bminor/binutils-gdb",
        "ziglang/zig",
        "swiftlang/swift",
        "apple/swift",
        "nodejs/node",
        "python/cpython",
        "microsoft/stl",
        "dotnet/runtime",
        "openjdk/jdk",
        "msys2/mingw-packages",
        "mstorsjo/llvm-mingw",
        "bminor/glibc",
        "android/ndk",
        "nodejs/node-gyp",
        "rust-lang/cargo",
    }
)


@dataclass
class Candidate:
    """An entry that matched, with its score and what the decision needs to know about it."""

    entry: Entry
    confidence: float
    evidence: list[Evidence]
    captures: dict[str, str]
    lines: set[tuple[str, int]]
    detected_versions: dict[int, str] = field(default_factory=dict)
    adjustments: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    """The decision with the candidates behind it, before rendering."""

    decision: Decision
    diagnoses: list[Candidate]
    wrappers: list[Candidate]
    reason: str
    ruled_out: list[tuple[str, str]]


def score(hits: EntryHits, penalties: list[tuple[str, float]]) -> Candidate:
    """Confidence of one entry from its signature hits, their regions and the text-wide penalties."""
    entry = hits.entry
    best_by_signature: dict[int, float] = {}
    for hit in hits.signatures:
        penalty = REGION_PENALTY.get(hit.line.region, 0.0)
        if hit.line.region == "prose" and _inside_inline_code(hit.line.text, hit.start):
            penalty = INLINE_MENTION_PENALTY
        value = entry.signatures[hit.signature].confidence - penalty
        best_by_signature[hit.signature] = max(best_by_signature.get(hit.signature, 0.0), value)
    ranked = sorted(best_by_signature.values(), reverse=True)
    confidence = ranked[0] + EXTRA_SIGNATURE_BONUS * (len(ranked) - 1)
    confidence = min(confidence, 0.99)
    adjustments = []
    for why, penalty in penalties:
        confidence -= penalty
        adjustments.append(f"-{penalty:.2f} {why}")
    # Evidence: distinct lines, strongest signatures first, then in text order.
    ordered = sorted(
        hits.signatures,
        key=lambda h: (-entry.signatures[h.signature].confidence, h.line.source != "body", h.line.number),
    )
    captures: dict[str, str] = {}
    for hit in ordered:
        for name, captured in hit.groups.items():
            captures.setdefault(name, captured)
    seen: set[tuple[str, int]] = set()
    evidence: list[Evidence] = []
    for hit in sorted(
        hits.signatures, key=lambda h: (h.line.source != "title", h.line.source, h.line.number)
    ):
        where = (hit.line.source, hit.line.number)
        if where in seen:
            continue
        seen.add(where)
        if len(evidence) < MAX_EVIDENCE_LINES:
            evidence.append(
                Evidence(
                    hit.line.number, hit.line.text, entry.signatures[hit.signature].name, hit.line.source
                )
            )
    return Candidate(
        entry, max(confidence, 0.0), evidence, captures, seen, dict(hits.detected_versions), adjustments
    )


_BACKTICK_RUN = re.compile(r"`+")


def _inside_inline_code(text: str, column: int) -> bool:
    """Whether a column sits inside a `code span` (an odd number of backtick runs before it).

    GNU ld's own quoting (`sym') opens a run too, but only after the start of the match."""
    return len(_BACKTICK_RUN.findall(text[:column])) % 2 == 1


def text_penalties(issue: IssueText, scan: ScanResult) -> list[tuple[str, float]]:
    """Penalties that apply to every entry: pull requests, toolchain repos, reports that state the fix."""
    penalties = []
    if issue.is_pull_request:
        penalties.append(("pull request", PULL_REQUEST_PENALTY))
    if issue.repo.lower() in TOOLCHAIN_REPOS:
        penalties.append((f"{issue.repo} is a toolchain's own repository", TOOLCHAIN_REPO_PENALTY))
    cautions = [c for c in scan.cautions if issue.is_pull_request or c[0] != "pr-fix-title"]
    if cautions:
        strongest = max(cautions, key=lambda c: c[1])
        penalties.append((f"the text states a fix (line {strongest[2].number})", strongest[1]))
    return penalties


def decide(
    issue: IssueText,
    scan: ScanResult,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    disabled: frozenset[str] = frozenset(),
) -> Verdict:
    """Comment on confident diagnoses, ask when only a wrapper is there, otherwise stay silent."""
    penalties = text_penalties(issue, scan)
    ruled_out: list[tuple[str, str]] = []
    diagnoses: list[Candidate] = []
    wrappers: list[Candidate] = []
    for hits in scan.entries:
        entry = hits.entry
        if entry.id in disabled:
            ruled_out.append((entry.id, "disabled in this repository"))
            continue
        missing = [c for i, c in enumerate(entry.requires) if i not in hits.requires_met]
        if missing:
            ruled_out.append(
                (entry.id, "required context missing: " + (missing[0].reason or missing[0].pattern))
            )
            continue
        if hits.excludes_hit:
            index, line = hits.excludes_hit[0]
            cond = entry.excludes[index]
            ruled_out.append((entry.id, f"ruled out by line {line.number}: {cond.reason or cond.pattern}"))
            continue
        candidate = score(hits, penalties)
        (wrappers if entry.kind == "wrapper" else diagnoses).append(candidate)

    diagnoses = _drop_superseded(diagnoses, ruled_out, min_confidence)
    confident = [c for c in diagnoses if c.confidence >= min_confidence]
    for c in diagnoses:
        if c.confidence < min_confidence:
            ruled_out.append(
                (
                    c.entry.id,
                    f"confidence {c.confidence:.2f} below {min_confidence:.2f}"
                    + (f" ({'; '.join(c.adjustments)})" if c.adjustments else ""),
                )
            )
    confident.sort(key=lambda c: (-c.entry.specificity, -c.confidence, c.entry.id))
    chosen: list[Candidate] = []
    for c in confident:
        if len(chosen) >= MAX_DIAGNOSES:
            ruled_out.append((c.entry.id, "more diagnoses than one comment shows"))
            continue
        overlap = next((p for p in chosen if p.lines & c.lines), None)
        if overlap is not None:
            ruled_out.append((c.entry.id, f"same lines explained more specifically by {overlap.entry.id}"))
            continue
        chosen.append(c)
    # A failure that also printed harmless warnings: the failure leads.
    chosen.sort(key=lambda c: (c.entry.kind == "warning",))

    if chosen:
        return Verdict(
            "comment",
            chosen,
            wrappers,
            f"diagnosed {chosen[0].entry.id} (confidence {chosen[0].confidence:.2f})",
            ruled_out,
        )
    cautious = [why for why, _ in penalties]
    if wrappers and not cautious:
        return Verdict(
            "ask", [], wrappers, f"only a wrapper line matched ({wrappers[0].entry.id})", ruled_out
        )
    if wrappers:
        return Verdict(
            "silent", [], wrappers, "only a wrapper line matched, and " + "; ".join(cautious), ruled_out
        )
    if diagnoses:
        return Verdict("silent", [], [], "no diagnosis is confident enough", ruled_out)
    return Verdict("silent", [], [], "no linker or loader failure found", ruled_out)


def _drop_superseded(
    candidates: list[Candidate], ruled_out: list[tuple[str, str]], min_confidence: float
) -> list[Candidate]:
    # Only a confident, more specific diagnosis may push a generic one aside.
    present = {c.entry.id for c in candidates}
    superseded: dict[str, str] = {}
    for c in candidates:
        if c.confidence < min_confidence:
            continue
        for other in c.entry.supersedes:
            if other in present:
                superseded.setdefault(other, c.entry.id)
    for other, by in superseded.items():
        ruled_out.append((other, f"superseded by {by}"))
    return [c for c in candidates if c.entry.id not in superseded]


_VERSION_PART = re.compile(r"\d+|[A-Za-z]+")


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A sortable key for versions like v0.6.0-alpha.4, 1.21.3 or 2.39 (pre-releases sort before)."""
    text = version.lstrip("vV")
    main, _, pre = text.partition("-")
    parts: list[tuple[int, int | str]] = [(1, int(p)) for p in re.findall(r"\d+", main)[:6]]
    while len(parts) < 6:
        parts.append((1, 0))
    if pre:
        parts.append((0, 0))
        for token in _VERSION_PART.findall(pre)[:6]:
            parts.append((1, int(token)) if token.isdigit() else (0, token.lower()))
    else:
        parts.append((2, 0))
    return tuple(parts)


def _branch(version: str) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", version.lstrip("vV").partition("-")[0])
    return tuple(int(n) for n in numbers[:2])


def is_fixed(found: str, fixes: list[str]) -> bool:
    """Whether `found` has the fix, given the first fixed release of each maintained branch."""
    same_branch = [f for f in fixes if _branch(f) == _branch(found)]
    if same_branch:
        return version_key(found) >= min(version_key(f) for f in same_branch)
    return version_key(found) >= max(version_key(f) for f in fixes)


def version_notes(candidate: Candidate) -> list[str]:
    """Sentences comparing the version the reporter shows with the releases that fixed the failure."""
    by_component: dict[str, list[int]] = {}
    for index, fixed in enumerate(candidate.entry.fixed_in):
        by_component.setdefault(fixed.component, []).append(index)
    notes = []
    for component, indexes in by_component.items():
        fixes = [candidate.entry.fixed_in[i] for i in indexes]
        versions = [f.version for f in fixes]
        found = next(
            (candidate.detected_versions[i] for i in indexes if i in candidate.detected_versions), None
        )
        extra = " ".join(f.note for f in fixes if f.note)
        head = f"Fixed in {component} {' / '.join(versions)}"
        if found is None:
            notes.append(f"{head}." + (f" {extra}" if extra else ""))
        elif not is_fixed(found, versions):
            notes.append(f"{head}; you show {found}: upgrade." + (f" {extra}" if extra else ""))
        else:
            notes.append(
                f"{head}; you show {found}, which should already have the fix: check that this version "
                "is the one actually built (a `replace` directive, a lock file or a vendored copy)."
            )
    return notes
