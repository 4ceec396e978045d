"""Per-repository configuration (`.github/linker-triage.yml`): schema, defaults and validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from bot.commands import COMMANDS, DEFAULT_PREFIX

CONFIG_PATH = ".github/linker-triage.yml"
MODES = ("comment", "labels-only", "dry-run")
PULL_REQUEST_POLICIES = ("ignore", "triage")
MAX_CONFIG_BYTES = 64 << 10

EXAMPLE_CONFIG = """\
# .github/linker-triage.yml — every key is optional; these are the defaults unless noted.
enabled: true
# comment: post the diagnosis; labels-only: only add labels; dry-run: log what it would do, write nothing.
mode: comment
# Labels added with a diagnosis: a list, [] for none, or a mapping per ecosystem / class id
# (keys: default, go, native, runtime, or a class id).
labels:
  default: [linker-failure]
  go: [linker-failure, area/cgo]
  runtime-glibc-version-not-found: [linker-failure, glibc]
min_confidence: 0.7
disabled_classes: [native-ld-execstack-rwx-warning]
pull_requests: ignore          # or: triage
ignore_authors: ["dependabot[bot]", "renovate[bot]"]
ignore_labels: [wontfix, question]
command_prefix: /linker
# Commands this repository does not want (help is always available).
disabled_commands: []
# A folder in this repository with extra knowledge-base entries (same schema as knowledge/).
knowledge_dir: .github/linker-triage
"""


@dataclass(frozen=True)
class RepoConfig:
    """The effective configuration of one repository."""

    enabled: bool = True
    mode: str = "comment"
    labels: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"default": ("linker-failure",)})
    labels_from_entries: bool = True  # no `labels` key: use each entry's own labels
    min_confidence: float = 0.7
    disabled_classes: frozenset[str] = frozenset()
    pull_requests: str = "ignore"
    ignore_authors: frozenset[str] = frozenset()
    ignore_labels: frozenset[str] = frozenset()
    command_prefix: str = DEFAULT_PREFIX
    disabled_commands: frozenset[str] = frozenset()
    knowledge_dir: str | None = None
    source: str = "defaults"  # defaults | repository | organisation

    def labels_for(self, class_id: str, ecosystem: str, entry_labels: tuple[str, ...]) -> list[str]:
        """The labels to add for one diagnosis."""
        if self.labels_from_entries:
            return list(entry_labels)
        for key in (class_id, ecosystem, "default"):
            if key in self.labels:
                return list(self.labels[key])
        return []


DEFAULT_CONFIG = RepoConfig()

_KEYS = (
    "enabled",
    "mode",
    "labels",
    "min_confidence",
    "disabled_classes",
    "pull_requests",
    "ignore_authors",
    "ignore_labels",
    "command_prefix",
    "disabled_commands",
    "knowledge_dir",
)


def _strings(value: Any, key: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    problems.append(f"{key}: must be a string or a list of strings")
    return ()


def parse_config(text: str | bytes, source: str = "repository") -> tuple[RepoConfig, list[str]]:
    """The configuration from YAML text, and every problem found (problems mean: don't use it)."""
    if len(text) > MAX_CONFIG_BYTES:
        return DEFAULT_CONFIG, [f"file larger than {MAX_CONFIG_BYTES} bytes"]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return DEFAULT_CONFIG, [f"not valid YAML: {' '.join(str(exc).split())}"]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return DEFAULT_CONFIG, ["the file must be a mapping of keys to values"]
    problems: list[str] = []
    for key in data:
        if key not in _KEYS:
            problems.append(f"{key}: unknown key (allowed: {', '.join(_KEYS)})")
    values: dict[str, Any] = {"source": source}
    if "enabled" in data:
        if isinstance(data["enabled"], bool):
            values["enabled"] = data["enabled"]
        else:
            problems.append("enabled: must be true or false")
    if "mode" in data:
        if data["mode"] in MODES:
            values["mode"] = data["mode"]
        else:
            problems.append(f"mode: must be one of {', '.join(MODES)}")
    if "labels" in data:
        raw = data["labels"]
        values["labels_from_entries"] = False
        if isinstance(raw, dict):
            labels = {}
            for key, value in raw.items():
                labels[str(key)] = _strings(value, f"labels.{key}", problems)
            values["labels"] = labels
        else:
            values["labels"] = {"default": _strings(raw, "labels", problems)}
    if "min_confidence" in data:
        value = data["min_confidence"]
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
            values["min_confidence"] = float(value)
        else:
            problems.append("min_confidence: must be a number from 0 to 1")
    for key in ("disabled_classes", "ignore_authors", "ignore_labels"):
        if key in data:
            values[key] = frozenset(_strings(data[key], key, problems))
    if "disabled_commands" in data:
        disabled = frozenset(
            s.lower() for s in _strings(data["disabled_commands"], "disabled_commands", problems)
        )
        unknown = disabled - set(COMMANDS)
        if unknown:
            problems.append(f"disabled_commands: unknown command(s) {', '.join(sorted(unknown))}")
        values["disabled_commands"] = disabled - {"help"}
    if "pull_requests" in data:
        if data["pull_requests"] in PULL_REQUEST_POLICIES:
            values["pull_requests"] = data["pull_requests"]
        else:
            problems.append(f"pull_requests: must be one of {', '.join(PULL_REQUEST_POLICIES)}")
    if "command_prefix" in data:
        prefix = data["command_prefix"]
        if (
            isinstance(prefix, str)
            and prefix.startswith("/")
            and 2 <= len(prefix) <= 30
            and " " not in prefix
        ):
            values["command_prefix"] = prefix
        else:
            problems.append("command_prefix: must start with '/' and be one word of 2 to 30 characters")
    if "knowledge_dir" in data:
        folder = data["knowledge_dir"]
        if (
            isinstance(folder, str)
            and folder
            and not folder.startswith("/")
            and ".." not in folder.split("/")
        ):
            values["knowledge_dir"] = folder.strip("/")
        else:
            problems.append("knowledge_dir: must be a relative folder inside the repository")
    if problems:
        return DEFAULT_CONFIG, problems
    return RepoConfig(**values), []
