"""Where a repository's configuration and extra knowledge entries come from: the contents API, cached."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.errors import RetryLater
from bot.github import GitHubPermanentError, InstallationClient
from bot.kbcheck import entry_failures
from bot.knowledge import Entry, KnowledgeBase, parse_entry_texts
from bot.repoconfig import CONFIG_PATH, DEFAULT_CONFIG, MAX_CONFIG_BYTES, RepoConfig, parse_config

log = logging.getLogger(__name__)

CONTENTS = "/repos/{owner}/{repo}/contents/{+path}"
ORG_CONFIG_REPO = ".github"  # the organisation-wide fall-back, as for GitHub's own community files
CONFIG_TTL_SECONDS = 300.0
MAX_CACHED_REPOS = 2048
MAX_CACHED_KNOWLEDGE = 64
MAX_KNOWLEDGE_FILES = 50
MAX_ENTRY_BYTES = 256 << 10
MAX_SHOWN_PROBLEMS = 20

Clock = Callable[[], float]


@dataclass(frozen=True)
class RepoSettings:
    """The effective configuration of one repository, with its knowledge base and what was wrong."""

    config: RepoConfig
    kb: KnowledgeBase
    problems: tuple[str, ...] = ()  # the configuration file's problems (the file was not used)
    kb_problems: tuple[str, ...] = ()  # the repository's own knowledge entries that were skipped
    location: str | None = None  # "owner/repo:.github/linker-triage.yml" when read from a file
    loaded_at: float = 0.0
    extra_entries: tuple[str, ...] = field(default=())  # ids of the repository's own entries

    @property
    def all_problems(self) -> list[str]:
        """Every problem, for `/linker help` (maintainers only)."""
        return [*self.problems, *self.kb_problems]


_Knowledge = tuple[KnowledgeBase, tuple[str, ...], tuple[str, ...]]  # base, problems, extra entry ids


class _NotFound(Exception):
    pass


class ConfigLoader:
    """Reads `.github/linker-triage.yml` (repository first, then the organisation's `.github` repository).

    Answers are cached for `ttl` seconds per repository. An invalid file keeps the last good configuration
    of that repository (or the defaults) and its problems are kept for `/linker help`. A repository's own
    knowledge entries are cached by their blob shas, so an unchanged folder is never parsed twice.
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        ttl: float = CONFIG_TTL_SECONDS,
        clock: Clock = time.time,
        max_repos: int = MAX_CACHED_REPOS,
    ) -> None:
        self.kb = kb
        self.ttl = ttl
        self._clock = clock
        self._max_repos = max_repos
        self._cache: OrderedDict[str, RepoSettings] = OrderedDict()
        self._last_good: OrderedDict[str, RepoConfig] = OrderedDict()
        self._knowledge: OrderedDict[tuple[Any, ...], _Knowledge] = OrderedDict()
        self.loads = 0

    def invalidate(self, repo: str) -> None:
        """Forget a repository's cached configuration (e.g. `/linker retry`)."""
        self._cache.pop(repo.lower(), None)

    async def load(self, gh: InstallationClient, repo: str) -> RepoSettings:
        """The repository's settings, from the cache while fresh."""
        key = repo.lower()
        cached = self._cache.get(key)
        now = self._clock()
        if cached is not None and cached.loaded_at + self.ttl > now:
            return cached
        try:
            settings = await self._read(gh, repo)
        except RetryLater:
            if cached is not None:
                log.warning("configuration of %s could not be read; using the expired copy", repo)
                return cached
            raise
        self._remember(self._cache, key, settings)
        return settings

    @staticmethod
    def _remember(table: OrderedDict[Any, Any], key: Any, value: Any, limit: int = MAX_CACHED_REPOS) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > limit:
            table.popitem(last=False)

    async def _read(self, gh: InstallationClient, repo: str) -> RepoSettings:
        self.loads += 1
        owner = repo.split("/", 1)[0]
        now = self._clock()
        problems: list[str] = []
        found: tuple[str, str, bytes] | None = None  # (holder repo, source, text)
        for holder, source in ((repo, "repository"), (f"{owner}/{ORG_CONFIG_REPO}", "organisation")):
            if holder.lower() == repo.lower() and source == "organisation":
                continue
            try:
                text = await self._file(gh, holder, CONFIG_PATH, MAX_CONFIG_BYTES)
            except _NotFound:
                continue
            except ValueError as exc:
                problems.append(f"{holder}:{CONFIG_PATH}: {exc}")
                found = None
                break
            found = (holder, source, text)
            break
        if found is None and not problems:
            config = DEFAULT_CONFIG
            location = None
            holder = repo
        elif found is None:
            config = self._last_good.get(repo.lower(), DEFAULT_CONFIG)
            location = None
            holder = repo
        else:
            holder, source, text = found
            location = f"{holder}:{CONFIG_PATH}"
            parsed, file_problems = parse_config(text, source)
            if file_problems:
                problems.extend(f"{location}: {p}" for p in file_problems)
                config = self._last_good.get(repo.lower(), DEFAULT_CONFIG)
            else:
                config = parsed
                self._remember(self._last_good, repo.lower(), config)
        if problems:
            log.warning(
                "configuration of %s is invalid; using %s: %s",
                repo,
                "the last good one" if config is not DEFAULT_CONFIG else "the defaults",
                "; ".join(problems),
                extra={"fields": {"repo": repo, "config_problems": problems}},
            )
        kb: KnowledgeBase = self.kb
        kb_problems: tuple[str, ...] = ()
        extra_ids: tuple[str, ...] = ()
        if config.knowledge_dir:
            kb, kb_problems, extra_ids = await self._knowledge_base(gh, holder, config.knowledge_dir)
            if kb_problems:
                log.warning(
                    "repository knowledge entries of %s skipped: %s",
                    holder,
                    "; ".join(kb_problems),
                    extra={"fields": {"repo": repo, "kb_problems": list(kb_problems)}},
                )
        return RepoSettings(
            config=config,
            kb=kb,
            problems=tuple(problems),
            kb_problems=kb_problems,
            location=location,
            loaded_at=now,
            extra_entries=extra_ids,
        )

    async def _get(self, gh: InstallationClient, repo: str, path: str) -> Any:
        owner, name = repo.split("/", 1)
        try:
            return await gh.getitem(CONTENTS, {"owner": owner, "repo": name, "path": path})
        except GitHubPermanentError as exc:
            if exc.status == 404:
                raise _NotFound(path) from exc
            if exc.status == 403:
                raise ValueError(f"could not be read (GitHub answered 403: {exc})") from exc
            raise

    async def _file(self, gh: InstallationClient, repo: str, path: str, limit: int) -> bytes:
        """A file's bytes; _NotFound when absent, ValueError when it cannot be used."""
        data = await self._get(gh, repo, path)
        return _decode_file(data, limit)

    async def _knowledge_base(self, gh: InstallationClient, repo: str, folder: str) -> _Knowledge:
        where = f"{repo}:{folder}"
        try:
            listing = await self._get(gh, repo, folder)
        except _NotFound:
            return self.kb, (f"{where}: knowledge_dir not found",), ()
        except ValueError as exc:
            return self.kb, (f"{where}: {exc}",), ()
        if not isinstance(listing, list):
            return self.kb, (f"{where}: knowledge_dir is not a folder",), ()
        problems: list[str] = []
        files = sorted(
            (
                item
                for item in listing
                if isinstance(item, dict)
                and item.get("type") == "file"
                and str(item.get("name", "")).endswith((".yaml", ".yml"))
            ),
            key=lambda item: str(item.get("path")),
        )
        if len(files) > MAX_KNOWLEDGE_FILES:
            problems.append(f"{where}: more than {MAX_KNOWLEDGE_FILES} entries; only the first are read")
            files = files[:MAX_KNOWLEDGE_FILES]
        shas = tuple((str(f.get("path")), str(f.get("sha"))) for f in files)
        key = (self.kb.version, repo.lower(), folder, shas)
        cached = self._knowledge.get(key)
        if cached is not None:
            return cached
        texts: dict[str, bytes] = {}
        for item in files:
            path = str(item.get("path"))
            if isinstance(item.get("size"), int) and item["size"] > MAX_ENTRY_BYTES:
                problems.append(f"{repo}:{path}: larger than {MAX_ENTRY_BYTES} bytes; skipped")
                continue
            try:
                texts[path] = await self._file(gh, repo, path, MAX_ENTRY_BYTES)
            except _NotFound:
                problems.append(f"{repo}:{path}: vanished while reading; skipped")
            except ValueError as exc:
                problems.append(f"{repo}:{path}: {exc}; skipped")
        entries, entry_problems = parse_entry_texts(texts)
        problems.extend(f"{repo}:{p}" for p in entry_problems)
        known = {e.id for e in self.kb.entries} | {e.id for e in entries}
        usable = []
        for entry in entries:
            unknown = [s for s in entry.supersedes if s not in known]
            if unknown:
                problems.append(f"{repo}:{entry.path}: supersedes: unknown entry {unknown[0]!r}; skipped")
                continue
            usable.append(entry)
        material = "\n".join(f"{p}:{s}" for p, s in shas).encode()
        kb = self.kb.with_extra(usable, material) if usable else self.kb
        if usable:
            # Like the built-in entries, the repository's own must pass their examples: one that does
            # not (a signature that misses its own positive, one a built-in entry outranks) is skipped.
            failing = await asyncio.to_thread(_failing_examples, kb, usable)
            if failing:
                problems.extend(f"{repo}:{line}; skipped" for lines in failing.values() for line in lines)
                usable = [entry for entry in usable if entry.id not in failing]
                kb = self.kb.with_extra(usable, material) if usable else self.kb
        result = (kb, tuple(problems), tuple(e.id for e in usable))
        self._remember(self._knowledge, key, result, MAX_CACHED_KNOWLEDGE)
        return result


def _failing_examples(kb: KnowledgeBase, entries: list[Entry]) -> dict[str, list[str]]:
    """The failures of each entry whose examples fail (the first one of each is enough to say why)."""
    failing: dict[str, list[str]] = {}
    for entry in entries:
        failures = entry_failures(kb, entry)
        if failures:
            failing[entry.id] = failures[:1]
    return failing


def _decode_file(data: Any, limit: int) -> bytes:
    if isinstance(data, list):
        raise ValueError("is a folder, not a file")
    if not isinstance(data, dict) or data.get("type") not in ("file", None):
        raise ValueError("is not a file")
    size = data.get("size")
    if isinstance(size, int) and size > limit:
        raise ValueError(f"larger than {limit} bytes")
    content = data.get("content")
    if data.get("encoding") != "base64" or not isinstance(content, str):
        raise ValueError("came without base64 content")
    try:
        raw = base64.b64decode(content.encode("ascii"), validate=False)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"content is not valid base64: {exc}") from exc
    if len(raw) > limit:
        raise ValueError(f"larger than {limit} bytes")
    return raw
