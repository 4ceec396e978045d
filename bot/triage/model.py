"""Plain data passed between the triage stages and out to handlers and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Decision = Literal["comment", "ask", "silent"]


@dataclass(frozen=True)
class IssueText:
    """Everything the triage looks at: the issue as the reporter wrote it."""

    title: str
    body: str
    comments: tuple[str, ...] = ()  # the reporter's own later comments, oldest first
    repo: str = ""  # owner/name; empty when unknown (CLI on a file)
    is_pull_request: bool = False
    author: str = ""


@dataclass(frozen=True)
class Evidence:
    """One matched line, with its line number in the original text (title is line 0)."""

    line: int
    text: str
    signature: str  # the signature name inside its entry
    source: str = "body"  # "title", "body" or "comment N"


@dataclass
class Match:
    """One knowledge-base entry that matched, with what it captured and the workarounds chosen."""

    id: str
    title: str
    kind: str  # diagnosis | warning | wrapper
    confidence: float
    evidence: list[Evidence]
    captures: dict[str, str]
    workarounds: list[dict[str, str]] = field(default_factory=list)  # {"title", "text"} rendered
    explanation: str = ""
    version_notes: list[str] = field(default_factory=list)
    specificity: int = 0

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of design.md's `match --json` contract (plus a few extras)."""
        return {
            "id": self.id,
            "title": self.title,
            "kind": self.kind,
            "confidence": round(self.confidence, 3),
            "evidence": [{"line": e.line, "text": e.text} for e in self.evidence],
            "workarounds": self.workarounds,
            "captures": self.captures,
        }


@dataclass
class TriageResult:
    """The outcome for one issue: what to do and the comment text when speaking."""

    decision: Decision
    matches: list[Match]  # diagnoses first (matches[0] leads the comment); wrappers after
    comment: str | None
    reason: str  # one line: why this decision (shown when silent, logged always)
    labels: list[str]
    input_hash: str
    kb_version: str
    context: dict[str, str] = field(default_factory=dict)
    ruled_out: list[tuple[str, str]] = field(default_factory=list)  # (class id, why) for /linker why

    @property
    def class_ids(self) -> list[str]:
        """Ids of the diagnoses the comment names, primary first."""
        return [m.id for m in self.matches if m.kind != "wrapper"]
