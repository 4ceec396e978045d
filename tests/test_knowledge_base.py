"""The shipped knowledge base: valid, every example passing, catalogue in sync, eval targets met."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.evaluate import default_eval_dir, evaluate
from bot.kbcheck import catalogue_markdown, check_examples
from bot.knowledge import KnowledgeBase, default_knowledge_dir, load_knowledge_base

ROOT = Path(__file__).resolve().parent.parent
NOTES = ROOT.parent / "shared" / "knowledge-notes"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge_base(default_knowledge_dir())


def test_every_example_passes(kb: KnowledgeBase) -> None:
    failures, counts = check_examples(kb)
    assert failures == []
    assert counts["positive"] >= 2 * len(kb.entries) and counts["negative"] >= len(kb.entries)


def test_catalogue_is_in_sync(kb: KnowledgeBase) -> None:
    catalogue = ROOT / "docs" / "knowledge.md"
    assert catalogue.read_text(encoding="utf-8") == catalogue_markdown(kb), (
        "docs/knowledge.md is stale: run  python -m bot kb list --markdown > docs/knowledge.md"
    )


def test_every_class_of_the_notes_has_an_entry(kb: KnowledgeBase) -> None:
    if not NOTES.is_dir():
        pytest.skip(f"research notes not found at {NOTES}")
    ids = set()
    for notes in NOTES.glob("*.md"):
        for line in notes.read_text(encoding="utf-8").splitlines():
            if line.startswith("## ") and line[3:].split(" ")[0].count("-") >= 2:
                candidate = line[3:].strip()
                if candidate.split("-")[0] in ("go", "native", "runtime"):
                    ids.add(candidate)
    missing = sorted(ids - set(kb.by_id))
    assert missing == [], f"classes without an entry: {missing}"


def test_wrappers_never_diagnose(kb: KnowledgeBase) -> None:
    for entry in kb.entries:
        if entry.kind == "wrapper":
            assert entry.ask, entry.id


def test_evaluation_targets() -> None:
    directory = default_eval_dir()
    if directory is None:
        pytest.skip("../shared/eval/dev not found next to the repository")
    cases = evaluate(load_knowledge_base(default_knowledge_dir()), directory)
    tp = sum(len(c.predicted & c.expected) for c in cases)
    fp = sum(len(c.predicted - c.expected) for c in cases)
    assert tp / max(tp + fp, 1) >= 0.97
    for area in ("go", "native", "runtime"):
        group = [c for c in cases if c.area == area]
        gtp = sum(len(c.predicted & c.expected) for c in group)
        gfn = sum(len(c.expected - c.predicted) for c in group)
        assert gtp / max(gtp + gfn, 1) >= 0.90, area
    nones = [c for c in cases if not c.expected]
    assert sum(1 for c in nones if c.predicted) <= 0.01 * len(nones)


@pytest.mark.parametrize(
    ("current", "ratchet", "problems"),
    [
        ({"precision": 1.0, "lookalike_rate": 0.0}, {"precision": 1.0, "lookalike_rate": 0.0}, []),
        ({"precision": 0.99}, {"precision": 1.0}, ["precision: 0.99 is below the ratchet 1.0"]),
        (
            {"lookalike_rate": 0.02},
            {"lookalike_rate": 0.0},
            ["lookalike_rate: 0.02 is above the ratchet 0.0"],
        ),
        ({"recall.go": 0.97}, {"recall.go": 0.95}, []),
        ({}, {"recall.go": 0.95}, ["recall.go: missing (ratchet 0.95)"]),
    ],
)
def test_ratchet_regressions(
    current: dict[str, float], ratchet: dict[str, float], problems: list[str]
) -> None:
    from bot.evaluate import regressions

    assert regressions(current, ratchet) == problems


def test_ratchet_only_moves_up() -> None:
    from bot.evaluate import improved

    best = {"precision": 0.98, "recall.go": 0.95, "lookalike_rate": 0.02}
    now = {"precision": 0.99, "recall.go": 0.94, "lookalike_rate": 0.01, "recall.native": 0.9}
    assert improved(now, best) == {
        "precision": 0.99,
        "recall.go": 0.95,
        "lookalike_rate": 0.01,
        "recall.native": 0.9,
    }


def test_ratchet_file_holds_the_targets() -> None:
    from bot.evaluate import load_ratchet

    ratchet = load_ratchet(ROOT / "eval-ratchet.json")
    assert ratchet["precision"] >= 0.97 and ratchet["lookalike_rate"] <= 0.01
    assert all(ratchet[f"recall.{area}"] >= 0.90 for area in ("go", "native", "runtime"))
