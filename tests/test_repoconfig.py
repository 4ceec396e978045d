"""Per-repository configuration: defaults, every key, and invalid files."""

from __future__ import annotations

import pytest

from bot.repoconfig import DEFAULT_CONFIG, EXAMPLE_CONFIG, parse_config


def test_example_config_is_valid() -> None:
    config, problems = parse_config(EXAMPLE_CONFIG)
    assert problems == []
    assert config.mode == "comment" and config.source == "repository"
    assert "native-ld-execstack-rwx-warning" in config.disabled_classes
    assert config.labels_for("runtime-glibc-version-not-found", "runtime", ("x",)) == [
        "linker-failure",
        "glibc",
    ]
    assert config.labels_for("go-foo", "go", ("x",)) == ["linker-failure", "area/cgo"]
    assert config.labels_for("native-foo", "native", ("x",)) == ["linker-failure"]
    assert config.knowledge_dir == ".github/linker-triage"


def test_empty_file_means_defaults() -> None:
    config, problems = parse_config("")
    assert problems == [] and config.enabled and config.mode == "comment"
    assert config.labels_for("native-x", "native", ("linker-failure", "c")) == ["linker-failure", "c"]


def test_labels_none() -> None:
    config, _ = parse_config("labels: []")
    assert config.labels_for("native-x", "native", ("linker-failure",)) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("colour: red", "colour: unknown key"),
        ("enabled: maybe", "enabled: must be true or false"),
        ("mode: loud", "mode: must be one of"),
        ("min_confidence: 3", "min_confidence: must be a number"),
        ("pull_requests: sometimes", "pull_requests: must be one of"),
        ("command_prefix: linker", "command_prefix: must start with '/'"),
        ("knowledge_dir: ../etc", "knowledge_dir: must be a relative folder"),
        ("disabled_commands: [fly]", "disabled_commands: unknown command"),
        ("labels: {go: 3}", "labels.go: must be a string or a list"),
        ("- a\n- b", "must be a mapping"),
        ("mode: [unclosed", "not valid YAML"),
        ("x" * 70_000, "larger than"),
    ],
)
def test_invalid_files_fall_back_and_say_why(text: str, problem: str) -> None:
    config, problems = parse_config(text)
    assert config is DEFAULT_CONFIG
    assert any(problem in p for p in problems), problems


def test_help_cannot_be_disabled() -> None:
    config, problems = parse_config("disabled_commands: [help, retry]")
    assert problems == [] and config.disabled_commands == frozenset({"retry"})


def test_readme_holds_the_complete_example_and_every_key() -> None:
    from pathlib import Path

    from bot.repoconfig import _KEYS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert "## Per-repository configuration" in readme and "## Slash commands" in readme
    assert "```yaml\n" + EXAMPLE_CONFIG + "```" in readme
    section = readme.split("## Per-repository configuration", 1)[1]
    for key in _KEYS:
        assert f"| `{key}` |" in section, key
