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
