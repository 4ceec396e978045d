"""Precision and recall of the matcher over labelled real issues (shared/eval/dev)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.knowledge import KnowledgeBase
from bot.triage import triage
from bot.triage.model import IssueText, TriageResult

_SOURCE = re.compile(r"github\.com/([^/]+/[^/]+)/(issues|pull)/\d+")


@dataclass
class Case:
    """One labelled issue and what the matcher made of it."""

    path: Path
    area: str
    expected: set[str]
    predicted: set[str]
    decision: str
    result: TriageResult


def default_eval_dir() -> Path | None:
    """../shared/eval/dev next to the repository, when it is there."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "shared" / "eval" / "dev", Path.cwd().parent / "shared" / "eval" / "dev"):
        if candidate.is_dir():
            return candidate
    return None


def load_case(path: Path) -> tuple[IssueText, set[str]]:
    """The issue text and expected class ids of one labelled file."""
    data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    expect = data.get("expect")
    expected = set() if expect in (None, "none") else ({expect} if isinstance(expect, str) else set(expect))
    source = str(data.get("source", ""))
    match = _SOURCE.search(source)
    issue = IssueText(
        title=str(data.get("title") or ""),
        body=str(data.get("body") or ""),
        repo=match.group(1) if match else "",
        is_pull_request=bool(match and match.group(2) == "pull"),
    )
    return issue, expected


def evaluate(kb: KnowledgeBase, directory: Path) -> list[Case]:
    """Run every labelled issue under `directory`."""
    cases = []
    for path in sorted(directory.rglob("*.yaml")):
        issue, expected = load_case(path)
        result = triage(issue, kb)
        predicted = set(result.class_ids) if result.decision == "comment" else set()
        cases.append(Case(path, path.parent.name, expected, predicted, result.decision, result))
    return cases


def report(cases: list[Case], area: str | None = None, verbose: bool = False) -> str:
    """A text report: per-area recall, overall precision, false positives and negatives."""
    out = []
    tp = fp = fn = 0
    for case in cases:
        tp += len(case.predicted & case.expected)
        fp += len(case.predicted - case.expected)
        fn += len(case.expected - case.predicted)
    out.append(
        f"overall: precision {tp / max(tp + fp, 1):.3f} ({tp} right, {fp} wrong), "
        f"recall {tp / max(tp + fn, 1):.3f} ({fn} missed) over {len(cases)} issues"
    )
    for name in sorted({c.area for c in cases}):
        group = [c for c in cases if c.area == name]
        gtp = sum(len(c.predicted & c.expected) for c in group)
        gfp = sum(len(c.predicted - c.expected) for c in group)
        gfn = sum(len(c.expected - c.predicted) for c in group)
        out.append(
            f"  {name:9} issues {len(group):3}  precision {gtp / max(gtp + gfp, 1):.3f}  "
            f"recall {gtp / max(gtp + gfn, 1):.3f}  (tp {gtp}, fp {gfp}, fn {gfn})"
        )
    nones = [c for c in cases if not c.expected]
    diagnosed = [c for c in nones if c.predicted]
    asked = [c for c in nones if c.decision == "ask"]
    out.append(
        f"none cases: {len(nones)}, diagnosed {len(diagnosed)} ({len(diagnosed) / max(len(nones), 1):.1%}), "
        f"asked {len(asked)}"
    )
    shown = [c for c in cases if area is None or c.area == area]
    wrong = [c for c in shown if c.predicted - c.expected]
    missed = [c for c in shown if c.expected - c.predicted]
    if wrong:
        out.append("\nfalse positives:")
        for c in wrong:
            out.append(
                f"  {c.path.name}: said {sorted(c.predicted - c.expected)}; expected "
                f"{sorted(c.expected) or 'none'}"
            )
            if verbose:
                out += _evidence(c)
    if missed:
        out.append("\nmissed:")
        for c in missed:
            got = ", ".join(f"{m.id}({m.confidence:.2f})" for m in c.result.matches) or "-"
            out.append(f"  {c.path.name}: {c.decision}; matched {got}; {c.result.reason}")
            if verbose:
                out += _evidence(c)
                out += [f"      ruled out {i}: {why}" for i, why in c.result.ruled_out]
    return "\n".join(out) + "\n"


def _evidence(case: Case) -> list[str]:
    lines = []
    for match in case.result.matches:
        for ev in match.evidence:
            lines.append(f"      {match.id} {ev.source} L{ev.line} [{ev.signature}]: {ev.text[:160]}")
    return lines


def figures(cases: list[Case]) -> dict[str, float]:
    """The ratcheted quality figures: overall precision and recall, recall per area, look-alike rate."""
    result: dict[str, float] = {}
    tp = sum(len(c.predicted & c.expected) for c in cases)
    fp = sum(len(c.predicted - c.expected) for c in cases)
    fn = sum(len(c.expected - c.predicted) for c in cases)
    result["precision"] = round(tp / max(tp + fp, 1), 4)
    result["recall"] = round(tp / max(tp + fn, 1), 4)
    for area in sorted({c.area for c in cases if c.expected}):
        group = [c for c in cases if c.area == area]
        gtp = sum(len(c.predicted & c.expected) for c in group)
        gfn = sum(len(c.expected - c.predicted) for c in group)
        result[f"recall.{area}"] = round(gtp / max(gtp + gfn, 1), 4)
    nones = [c for c in cases if not c.expected]
    result["lookalike_rate"] = round(sum(1 for c in nones if c.predicted) / max(len(nones), 1), 4)
    return result


def per_class(cases: list[Case]) -> list[tuple[str, int, int, int]]:
    """(class id, right, wrong, missed) for every class that was expected or predicted."""
    counts: dict[str, list[int]] = {}
    for case in cases:
        for cid in case.predicted | case.expected:
            row = counts.setdefault(cid, [0, 0, 0])
            if cid in case.predicted and cid in case.expected:
                row[0] += 1
            elif cid in case.predicted:
                row[1] += 1
            else:
                row[2] += 1
    return [(cid, *row) for cid, row in sorted(counts.items())]  # type: ignore[misc]


def regressions(current: dict[str, float], ratchet: dict[str, float]) -> list[str]:
    """How the current figures fall behind the best ones recorded (lower is worse, except look-alikes)."""
    problems = []
    for key, best in sorted(ratchet.items()):
        now = current.get(key)
        if now is None:
            problems.append(f"{key}: missing (ratchet {best})")
        elif key == "lookalike_rate" and now > best + 1e-9:
            problems.append(f"{key}: {now} is above the ratchet {best}")
        elif key != "lookalike_rate" and now < best - 1e-9:
            problems.append(f"{key}: {now} is below the ratchet {best}")
    return problems


def improved(current: dict[str, float], ratchet: dict[str, float]) -> dict[str, float]:
    """The ratchet moved to every figure that got better (never down)."""
    moved = dict(ratchet)
    for key, now in current.items():
        best = ratchet.get(key)
        if best is None or (now < best if key == "lookalike_rate" else now > best):
            moved[key] = now
    return moved


def load_ratchet(path: Path) -> dict[str, float]:
    """The recorded best figures ({} when the file does not exist yet)."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): float(v) for k, v in data.get("figures", {}).items()}


def save_ratchet(path: Path, values: dict[str, float]) -> None:
    """Write the ratchet file (sorted, one figure per line, for readable diffs)."""
    text = json.dumps({"figures": dict(sorted(values.items()))}, indent=2) + "\n"
    path.write_text(text, encoding="utf-8")
