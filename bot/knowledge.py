"""The knowledge base: one YAML file per failure class, validated against a strict schema at load."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot import patterns
from bot.errors import KnowledgeError

ECOSYSTEMS = ("go", "native", "runtime")
KINDS = ("diagnosis", "warning", "wrapper")
# The context keys a workaround's `when` may test; values are what bot.triage.context detects.
WHEN_KEYS = ("os", "arch", "toolchain", "build_system", "libc", "language")
DEFAULT_LABELS = ("linker-failure",)
MAX_PATTERN_LENGTH = 2000
# libyaml's safe loader is ~10x faster than the pure-Python one; both construct plain data only.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Signature:
    """A line-level pattern that, when it matches, is evidence for its entry."""

    name: str
    pattern: str
    confidence: float


@dataclass(frozen=True)
class Condition:
    """A pattern tested anywhere in the text: required (all) or ruling out (none)."""

    pattern: str
    reason: str


@dataclass(frozen=True)
class Workaround:
    """One fix, shown when the reporter's context fits its `when`."""

    title: str
    text: str
    when: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class FixedIn:
    """A release that fixes the failure, and how to spot the version the reporter runs."""

    component: str
    version: str
    detect: str | None  # pattern with a `version` group, searched in the text
    note: str


@dataclass(frozen=True)
class Reference:
    """An upstream issue, fix or document."""

    title: str
    url: str


@dataclass(frozen=True)
class Example:
    """Text that kb check runs through the matcher: positives must match, negatives must not."""

    text: str
    captures: Mapping[str, str]


@dataclass(frozen=True)
class Entry:
    """One failure class (or a wrapper line that points at the real error)."""

    id: str
    title: str
    ecosystem: str
    kind: str
    specificity: int
    summary: str
    signatures: tuple[Signature, ...]
    requires: tuple[Condition, ...]
    excludes: tuple[Condition, ...]
    supersedes: tuple[str, ...]
    explanation: str
    defaults: Mapping[str, str]
    workarounds: tuple[Workaround, ...]
    ask: tuple[Workaround, ...]
    fixed_in: tuple[FixedIn, ...]
    references: tuple[Reference, ...]
    labels: tuple[str, ...]
    positive: tuple[Example, ...]
    negative: tuple[Example, ...]
    path: str


@dataclass(frozen=True)
class KnowledgeBase:
    """All entries, in a stable order, with a version hash of their source files."""

    entries: tuple[Entry, ...]
    version: str
    by_id: Mapping[str, Entry] = field(default_factory=dict)

    def get(self, entry_id: str) -> Entry | None:
        """The entry with this id, if any."""
        return self.by_id.get(entry_id)

    def without(self, ids: Iterable[str]) -> KnowledgeBase:
        """A copy with some entries disabled (per-repository configuration)."""
        drop = set(ids)
        kept = tuple(e for e in self.entries if e.id not in drop)
        digest = hashlib.sha256(",".join(sorted(drop)).encode()).hexdigest()[:6]
        return KnowledgeBase(kept, f"{self.version}-{digest}", {e.id: e for e in kept})

    def with_extra(self, extra: list[Entry], material: bytes) -> KnowledgeBase:
        """A copy with a repository's own entries added; an entry with a built-in id replaces it."""
        replaced = {e.id for e in extra}
        entries = tuple(e for e in self.entries if e.id not in replaced) + tuple(extra)
        digest = hashlib.sha256(material).hexdigest()[:8]
        return KnowledgeBase(entries, f"{self.version}+{digest}", {e.id: e for e in entries})


# --- validation helpers -------------------------------------------------------------------------


class _Problems:
    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, key: str, problem: str) -> None:
        self.items.append(f"{self.path}: {key}: {problem}")


def _check_keys(
    obj: Mapping[str, Any], allowed: Iterable[str], required: Iterable[str], where: str, problems: _Problems
) -> None:
    allowed_set = set(allowed)
    for key in obj:
        if key not in allowed_set:
            problems.add(f"{where}{key}", f"unknown key (allowed: {', '.join(sorted(allowed_set))})")
    for key in required:
        if key not in obj or obj[key] in (None, "", []):
            problems.add(f"{where}{key}", "required")


def _str(obj: Mapping[str, Any], key: str, where: str, problems: _Problems, default: str = "") -> str:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        problems.add(f"{where}{key}", f"must be a string, not {type(value).__name__}")
        return default
    return value


def _list(obj: Mapping[str, Any], key: str, where: str, problems: _Problems) -> list[Any]:
    value = obj.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(f"{where}{key}", f"must be a list, not {type(value).__name__}")
        return []
    return value


def _check_pattern(pattern: str, where: str, problems: _Problems) -> None:
    if len(pattern) > MAX_PATTERN_LENGTH:
        problems.add(where, f"pattern longer than {MAX_PATTERN_LENGTH} characters")
        return
    error = patterns.compile_error(pattern)
    if error:
        problems.add(where, f"not a linear-time (RE2) pattern: {error}")


# A template field is {lower_case_name} not preceded by "$": ${VAR}, {a,b} and {UPPER} stay literal.
TEMPLATE_FIELD = re.compile(r"(?<![${])\{([a-z][a-z0-9_]{0,40})\}(?!\})")


def template_fields(text: str) -> set[str]:
    """The capture names a title, explanation or workaround text uses."""
    return set(TEMPLATE_FIELD.findall(text))


def _parse_when(raw: Any, where: str, problems: _Problems) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add(where, "must be a mapping")
        return {}
    when: dict[str, tuple[str, ...]] = {}
    for key, value in raw.items():
        if key not in WHEN_KEYS:
            problems.add(f"{where}.{key}", f"unknown key (allowed: {', '.join(WHEN_KEYS)})")
            continue
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            problems.add(f"{where}.{key}", "must be a string or a list of strings")
            continue
        when[key] = tuple(v.lower() for v in values)
    return when


def _parse_workarounds(raw: list[Any], key: str, problems: _Problems) -> tuple[Workaround, ...]:
    result = []
    for i, item in enumerate(raw):
        where = f"{key}[{i}]."
        if not isinstance(item, dict):
            problems.add(f"{key}[{i}]", "must be a mapping with title and text")
            continue
        _check_keys(item, ("title", "text", "when"), ("title", "text"), where, problems)
        result.append(
            Workaround(
                title=_str(item, "title", where, problems),
                text=_str(item, "text", where, problems),
                when=_parse_when(item.get("when"), where + "when", problems),
            )
        )
    return tuple(result)


def _parse_examples(raw: list[Any], key: str, problems: _Problems) -> tuple[Example, ...]:
    result = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            result.append(Example(item, {}))
            continue
        where = f"examples.{key}[{i}]."
        if not isinstance(item, dict):
            problems.add(f"examples.{key}[{i}]", "must be a string or a mapping with text")
            continue
        _check_keys(item, ("text", "captures"), ("text",), where, problems)
        captures = item.get("captures") or {}
        if not isinstance(captures, dict):
            problems.add(where + "captures", "must be a mapping")
            captures = {}
        result.append(
            Example(_str(item, "text", where, problems), {str(k): str(v) for k, v in captures.items()})
        )
    return tuple(result)


ENTRY_KEYS = (
    "id",
    "title",
    "ecosystem",
    "kind",
    "specificity",
    "summary",
    "signatures",
    "requires",
    "excludes",
    "supersedes",
    "explanation",
    "defaults",
    "workarounds",
    "ask",
    "fixed_in",
    "references",
    "labels",
    "examples",
)


def parse_entry(data: Any, path: str) -> tuple[Entry | None, list[str]]:
    """Validate one entry's parsed YAML; returns the entry or the problems, each naming file and key."""
    problems = _Problems(path)
    if not isinstance(data, dict):
        problems.add("(top level)", "must be a mapping")
        return None, problems.items
    _check_keys(
        data, ENTRY_KEYS, ("id", "title", "ecosystem", "kind", "signatures", "examples"), "", problems
    )
    entry_id = _str(data, "id", "", problems)
    if entry_id and (not entry_id.replace("-", "").isalnum() or entry_id != entry_id.lower()):
        problems.add("id", "must be lower-case words joined by '-'")
    if entry_id and Path(path).stem != entry_id:
        problems.add("id", f"must equal the file name ({Path(path).stem})")
    ecosystem = _str(data, "ecosystem", "", problems)
    if ecosystem and ecosystem not in ECOSYSTEMS:
        problems.add("ecosystem", f"must be one of {', '.join(ECOSYSTEMS)}")
    if ecosystem and entry_id and not entry_id.startswith(ecosystem + "-"):
        problems.add("id", f"must start with '{ecosystem}-'")
    kind = _str(data, "kind", "", problems)
    if kind and kind not in KINDS:
        problems.add("kind", f"must be one of {', '.join(KINDS)}")
    specificity = data.get("specificity", 50)
    if not isinstance(specificity, int) or isinstance(specificity, bool) or not 0 <= specificity <= 100:
        problems.add("specificity", "must be an integer from 0 to 100")
        specificity = 50

    signatures = []
    names: set[str] = set()
    for i, raw in enumerate(_list(data, "signatures", "", problems)):
        where = f"signatures[{i}]."
        if not isinstance(raw, dict):
            problems.add(f"signatures[{i}]", "must be a mapping with name and pattern")
            continue
        _check_keys(raw, ("name", "pattern", "confidence"), ("name", "pattern"), where, problems)
        name = _str(raw, "name", where, problems)
        if name in names:
            problems.add(where + "name", f"duplicate signature name {name!r}")
        names.add(name)
        pattern = _str(raw, "pattern", where, problems)
        if pattern:
            _check_pattern(pattern, where + "pattern", problems)
        confidence = raw.get("confidence", 0.85)
        if not isinstance(confidence, int | float) or isinstance(confidence, bool) or not 0 < confidence <= 1:
            problems.add(where + "confidence", "must be a number in (0, 1]")
            confidence = 0.85
        signatures.append(Signature(name, pattern, float(confidence)))

    def conditions(key: str) -> tuple[Condition, ...]:
        result = []
        for i, raw in enumerate(_list(data, key, "", problems)):
            where = f"{key}[{i}]."
            if isinstance(raw, str):
                raw = {"pattern": raw}
            if not isinstance(raw, dict):
                problems.add(f"{key}[{i}]", "must be a pattern or a mapping with pattern and reason")
                continue
            _check_keys(raw, ("pattern", "reason"), ("pattern",), where, problems)
            pattern = _str(raw, "pattern", where, problems)
            if pattern:
                _check_pattern(pattern, where + "pattern", problems)
            result.append(Condition(pattern, _str(raw, "reason", where, problems)))
        return tuple(result)

    requires = conditions("requires")
    excludes = conditions("excludes")

    defaults_raw = data.get("defaults") or {}
    if not isinstance(defaults_raw, dict) or not all(isinstance(v, str) for v in defaults_raw.values()):
        problems.add("defaults", "must map capture names to strings")
        defaults_raw = {}
    defaults = {str(k): v for k, v in defaults_raw.items()}

    explanation = _str(data, "explanation", "", problems)
    if kind != "wrapper" and not explanation:
        problems.add("explanation", "required for diagnoses and warnings")
    workarounds = _parse_workarounds(_list(data, "workarounds", "", problems), "workarounds", problems)
    ask = _parse_workarounds(_list(data, "ask", "", problems), "ask", problems)
    if kind == "wrapper" and not ask:
        problems.add("ask", "a wrapper must say what output to ask for")
    if kind != "wrapper" and not workarounds:
        problems.add("workarounds", "required for diagnoses and warnings")

    fixed_in = []
    for i, raw in enumerate(_list(data, "fixed_in", "", problems)):
        where = f"fixed_in[{i}]."
        if not isinstance(raw, dict):
            problems.add(f"fixed_in[{i}]", "must be a mapping")
            continue
        _check_keys(
            raw, ("component", "version", "detect", "note"), ("component", "version"), where, problems
        )
        detect = raw.get("detect")
        if detect is not None:
            if not isinstance(detect, str):
                problems.add(where + "detect", "must be a string")
                detect = None
            else:
                _check_pattern(detect, where + "detect", problems)
                if "(?P<version>" not in detect:
                    problems.add(where + "detect", "must capture a (?P<version>...) group")
        fixed_in.append(
            FixedIn(
                _str(raw, "component", where, problems),
                str(raw.get("version", "")),
                detect,
                _str(raw, "note", where, problems),
            )
        )

    references = []
    for i, raw in enumerate(_list(data, "references", "", problems)):
        where = f"references[{i}]."
        if not isinstance(raw, dict):
            problems.add(f"references[{i}]", "must be a mapping with title and url")
            continue
        _check_keys(raw, ("title", "url"), ("title", "url"), where, problems)
        url = _str(raw, "url", where, problems)
        if url and not url.startswith("https://"):
            problems.add(where + "url", "must be an https:// address")
        references.append(Reference(_str(raw, "title", where, problems), url))

    labels = tuple(str(x) for x in _list(data, "labels", "", problems)) or DEFAULT_LABELS
    supersedes = tuple(str(x) for x in _list(data, "supersedes", "", problems))

    examples = data.get("examples") or {}
    positive: tuple[Example, ...] = ()
    negative: tuple[Example, ...] = ()
    if not isinstance(examples, dict):
        problems.add("examples", "must be a mapping with positive and negative lists")
    else:
        _check_keys(examples, ("positive", "negative"), ("positive", "negative"), "examples.", problems)
        positive = _parse_examples(_list(examples, "positive", "examples.", problems), "positive", problems)
        negative = _parse_examples(_list(examples, "negative", "examples.", problems), "negative", problems)
        if len(positive) < 2:
            problems.add("examples.positive", "at least two positive examples are required")
        if len(negative) < 1:
            problems.add("examples.negative", "at least one negative example is required")

    # Every {name} the texts use must be a capture of some pattern or have a default.
    captured: set[str] = set(defaults)
    for sig in signatures:
        captured |= patterns.group_names(sig.pattern)
    captured |= {"version_found"}
    for label, text in (
        [("explanation", explanation), ("title", _str(data, "title", "", problems))]
        + [(f"workarounds[{i}].text", w.text) for i, w in enumerate(workarounds)]
        + [(f"ask[{i}].text", w.text) for i, w in enumerate(ask)]
    ):
        missing = template_fields(text) - captured
        for name in sorted(missing):
            problems.add(label, f"uses {{{name}}} which no signature captures and defaults does not give")

    if problems.items:
        return None, problems.items
    return Entry(
        id=entry_id,
        title=_str(data, "title", "", problems),
        ecosystem=ecosystem,
        kind=kind,
        specificity=specificity,
        summary=_str(data, "summary", "", problems),
        signatures=tuple(signatures),
        requires=requires,
        excludes=excludes,
        supersedes=supersedes,
        explanation=explanation,
        defaults=defaults,
        workarounds=workarounds,
        ask=ask,
        fixed_in=tuple(fixed_in),
        references=tuple(references),
        labels=labels,
        positive=positive,
        negative=negative,
        path=path,
    ), []


def load_entries(paths: Iterable[Path], root: Path | None = None) -> tuple[list[Entry], list[str]]:
    """Parse and validate entry files; returns the good entries and every problem found."""
    entries: list[Entry] = []
    problems: list[str] = []
    for path in paths:
        shown = str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{shown}: (file): cannot read: {exc}")
            continue
        except yaml.YAMLError as exc:
            problems.append(f"{shown}: (file): not valid YAML: {exc}".replace("\n", " "))
            continue
        entry, entry_problems = parse_entry(data, shown)
        problems.extend(entry_problems)
        if entry is not None:
            entries.append(entry)
    return entries, problems


def parse_entry_texts(files: Mapping[str, str | bytes]) -> tuple[list[Entry], list[str]]:
    """Validate entries given as text (a repository's own folder, read through the API)."""
    entries: list[Entry] = []
    problems: list[str] = []
    for path, text in sorted(files.items()):
        try:
            data = yaml.load(text, Loader=_YAML_LOADER)
        except yaml.YAMLError as exc:
            problems.append(f"{path}: (file): not valid YAML: {' '.join(str(exc).split())}")
            continue
        entry, entry_problems = parse_entry(data, path)
        problems.extend(entry_problems)
        if entry is not None:
            entries.append(entry)
    return entries, problems


def entry_files(directory: Path) -> list[Path]:
    """The YAML files of a knowledge folder, in a stable order."""
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def build_knowledge_base(entries: list[Entry], version_material: bytes) -> KnowledgeBase:
    """Check cross-entry rules and assemble the base; raises KnowledgeError on a broken reference."""
    problems = []
    by_id: dict[str, Entry] = {}
    for entry in entries:
        if entry.id in by_id:
            problems.append(f"{entry.path}: id: duplicate of {by_id[entry.id].path}")
        by_id[entry.id] = entry
    for entry in entries:
        for i, other in enumerate(entry.supersedes):
            if other not in by_id:
                problems.append(f"{entry.path}: supersedes[{i}]: unknown entry {other!r}")
    if problems:
        raise KnowledgeError(problems)
    version = hashlib.sha256(version_material).hexdigest()[:12]
    return KnowledgeBase(tuple(entries), version, by_id)


def load_knowledge_base(directory: Path, extra: Iterable[Entry] = ()) -> KnowledgeBase:
    """Load and validate every entry under `directory`; raises KnowledgeError naming each problem."""
    files = entry_files(directory)
    if not files:
        raise KnowledgeError([f"{directory}: no knowledge-base entries found"])
    entries, problems = load_entries(files, directory)
    if problems:
        raise KnowledgeError(problems)
    material = b"".join(p.read_bytes() for p in files)
    return build_knowledge_base(entries + list(extra), material)


def default_knowledge_dir() -> Path:
    """The knowledge/ folder shipped next to the bot package."""
    return Path(__file__).resolve().parent.parent / "knowledge"
