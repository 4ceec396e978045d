"""The knowledge-base schema: broken entries are refused with file, key and problem named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.errors import KnowledgeError
from bot.knowledge import load_knowledge_base, parse_entry
from tests.kbfixtures import FIXTURE_KB_DIR


def base_entry() -> dict[str, Any]:
    path = FIXTURE_KB_DIR / "native" / "native-cannot-find-library.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def company_sdk_entry() -> dict[str, Any]:
    """A repository's own entry, distinct from every built-in one (its examples pass in the merged base)."""
    data = base_entry()
    data["id"] = "native-company-sdk-missing"
    data["title"] = "Company SDK library missing"
    data["signatures"] = [
        {"name": "sdk", "pattern": r"company-sdk: cannot load module (?P<library>\w+)", "confidence": 0.9}
    ]
    data.pop("excludes")
    data["examples"] = {
        "positive": [
            {"text": "company-sdk: cannot load module core", "captures": {"library": "core"}},
            "ERROR company-sdk: cannot load module net",
        ],
        "negative": ["company-sdk: loaded module core"],
    }
    return data


PATH = "native/native-cannot-find-library.yaml"


def test_fixture_entry_is_valid() -> None:
    entry, problems = parse_entry(base_entry(), PATH)
    assert problems == []
    assert entry is not None and entry.signatures[0].name == "gnu-ld"


def _mutated(**changes: Any) -> dict[str, Any]:
    data = base_entry()
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_mutated(colour="red"), "colour: unknown key"),
        (_mutated(title=None), "title: required"),
        (_mutated(kind="guess"), "kind: must be one of"),
        (_mutated(ecosystem="java"), "ecosystem: must be one of"),
        (_mutated(id="native-other"), "id: must equal the file name"),
        (_mutated(specificity=500), "specificity: must be an integer"),
        (
            _mutated(signatures=[{"name": "x", "pattern": "(a)\\1"}]),
            "signatures[0].pattern: not a linear-time",
        ),
        (
            _mutated(signatures=[{"name": "x", "pattern": "(?<=a)b"}]),
            "signatures[0].pattern: not a linear-time",
        ),
        (
            _mutated(signatures=[{"name": "x", "pattern": "a", "speed": 1}]),
            "signatures[0].speed: unknown key",
        ),
        (_mutated(explanation="uses {missing}"), "explanation: uses {missing}"),
        (_mutated(references=[{"title": "t", "url": "http://x"}]), "references[0].url: must be an https"),
        (_mutated(examples={"positive": ["a"], "negative": ["b"]}), "at least two positive"),
        (
            _mutated(workarounds=[{"title": "t", "text": "x", "when": {"planet": "mars"}}]),
            "when.planet: unknown key",
        ),
        (
            _mutated(fixed_in=[{"component": "x", "version": "1", "detect": "x (\\d+)"}]),
            "must capture a (?P<version>",
        ),
        (_mutated(workarounds=None), "workarounds: required"),
    ],
)
def test_broken_entries_name_file_key_and_problem(data: dict[str, Any], expected: str) -> None:
    entry, problems = parse_entry(data, PATH)
    assert entry is None
    assert any(expected in p and p.startswith(PATH) for p in problems), problems


def test_loader_refuses_broken_yaml(tmp_path: Path) -> None:
    (tmp_path / "native").mkdir()
    (tmp_path / "native" / "native-x.yaml").write_text("id: [unclosed\n")
    with pytest.raises(KnowledgeError) as info:
        load_knowledge_base(tmp_path)
    assert "native/native-x.yaml: (file): not valid YAML" in str(info.value)


def test_loader_refuses_unknown_supersedes(tmp_path: Path) -> None:
    data = base_entry()
    data["supersedes"] = ["native-nothing"]
    (tmp_path / "native").mkdir()
    (tmp_path / "native" / "native-cannot-find-library.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(KnowledgeError, match="supersedes\\[0\\]: unknown entry"):
        load_knowledge_base(tmp_path)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match="no knowledge-base entries"):
        load_knowledge_base(tmp_path)


def test_version_changes_with_content(tmp_path: Path) -> None:
    first = load_knowledge_base(FIXTURE_KB_DIR).version
    (tmp_path / "native").mkdir()
    data = base_entry()
    data["summary"] = "changed"
    (tmp_path / "native" / "native-cannot-find-library.yaml").write_text(yaml.safe_dump(data))
    assert load_knowledge_base(tmp_path).version != first


def test_repository_entries_are_validated_and_added() -> None:
    from bot.knowledge import parse_entry_texts

    kb = load_knowledge_base(FIXTURE_KB_DIR)
    data = base_entry()
    data["id"] = "native-company-sdk-missing"
    data["title"] = "Company SDK library missing"
    text = yaml.safe_dump(data)
    entries, problems = parse_entry_texts({".github/linker-triage/native-company-sdk-missing.yaml": text})
    assert problems == []
    merged = kb.with_extra(entries, text.encode())
    assert merged.get("native-company-sdk-missing") is not None
    assert merged.version != kb.version and len(merged.entries) == len(kb.entries) + 1
    broken, problems = parse_entry_texts({".github/linker-triage/native-x.yaml": "id: native-x\ncolour: 1\n"})
    assert broken == [] and any("colour: unknown key" in p for p in problems)


def test_disabling_entries_changes_the_version() -> None:
    kb = load_knowledge_base(FIXTURE_KB_DIR)
    smaller = kb.without(["native-cannot-find-library"])
    assert smaller.get("native-cannot-find-library") is None and smaller.version != kb.version
