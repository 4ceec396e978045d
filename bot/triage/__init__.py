"""Triage: from issue text to a decision and the comment to post. Pure functions, no I/O."""

from __future__ import annotations

import hashlib
import threading

from bot.knowledge import KnowledgeBase
from bot.triage.decide import DEFAULT_MIN_CONFIDENCE, decide
from bot.triage.engine import CompiledKnowledgeBase
from bot.triage.extract import ISSUE_TEXT_CAP, extract
from bot.triage.marker import Marker
from bot.triage.model import IssueText, Match, TriageResult
from bot.triage.render import choose, fill, render_comment, template_values, version_notes

__all__ = ["IssueText", "TriageResult", "compile_knowledge_base", "triage"]

# Keyed by version: every distinct content (built-in, per-repository variants) compiles once.
_compiled: dict[str, CompiledKnowledgeBase] = {}
_lock = threading.Lock()


def compile_knowledge_base(kb: KnowledgeBase) -> CompiledKnowledgeBase:
    """The compiled pattern set of a knowledge base, built once per version."""
    with _lock:
        cached = _compiled.get(kb.version)
        if cached is not None:
            return cached
        compiled = CompiledKnowledgeBase(kb)
        if len(_compiled) >= 32:
            _compiled.pop(next(iter(_compiled)))
        _compiled[kb.version] = compiled
        return compiled


def input_hash(issue: IssueText) -> str:
    """A short hash of what the triage reads, to notice when nothing changed."""
    digest = hashlib.sha256()
    for part in (issue.title, issue.body or "", *issue.comments):
        digest.update(part.encode("utf-8", "replace"))
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


def triage(
    issue: IssueText,
    kb: KnowledgeBase,
    *,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    disabled: frozenset[str] = frozenset(),
    cap: int = ISSUE_TEXT_CAP,
    workers: int = 1,
) -> TriageResult:
    """Find the failure in an issue and decide what to say about it (`workers`: threads for large text)."""
    compiled = compile_knowledge_base(kb)
    lines = extract(issue, cap=cap)
    scan = compiled.scan(lines, workers=workers)
    verdict = decide(issue, scan, min_confidence=min_confidence, disabled=disabled)
    digest = input_hash(issue)
    shown = verdict.diagnoses if verdict.decision == "comment" else verdict.wrappers[:1]
    marker = Marker(
        kind="ask" if verdict.decision == "ask" else "diagnosis",
        classes=tuple(c.entry.id for c in shown),
        input_hash=digest,
        kb_version=kb.version,
    )
    comment = render_comment(verdict, scan.context, marker)
    matches = []
    for candidate in verdict.diagnoses + verdict.wrappers:
        values = template_values(candidate)
        pool = candidate.entry.ask if candidate.entry.kind == "wrapper" else candidate.entry.workarounds
        matches.append(
            Match(
                id=candidate.entry.id,
                title=fill(candidate.entry.title, values).replace("`", ""),
                kind=candidate.entry.kind,
                confidence=candidate.confidence,
                evidence=candidate.evidence,
                captures=candidate.captures,
                workarounds=[
                    {"title": fill(w.title, values), "text": fill(w.text, values)}
                    for w in choose(pool, scan.context)
                ],
                explanation=fill(candidate.entry.explanation, values),
                version_notes=version_notes(candidate),
                specificity=candidate.entry.specificity,
            )
        )
    labels: list[str] = []
    if verdict.decision == "comment":
        for candidate in verdict.diagnoses:
            for label in candidate.entry.labels:
                if label not in labels:
                    labels.append(label)
    return TriageResult(
        decision=verdict.decision,
        matches=matches,
        comment=comment,
        reason=verdict.reason,
        labels=labels,
        input_hash=digest,
        kb_version=kb.version,
        context=scan.context.summary(),
        ruled_out=verdict.ruled_out,
    )
