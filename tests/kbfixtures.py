"""A small, stable knowledge base for engine tests (the real one grows independently)."""

from __future__ import annotations

from pathlib import Path

from bot.knowledge import KnowledgeBase, load_knowledge_base

FIXTURE_KB_DIR = Path(__file__).parent / "fixtures" / "kb"


def fixture_kb() -> KnowledgeBase:
    """The fixture knowledge base: purego, cannot-find-library and the collect2 wrapper."""
    return load_knowledge_base(FIXTURE_KB_DIR)
