"""Slash commands in comments: find them outside code, quotes and HTML comments; say who may run them."""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass

from bot.markdown import strip_html_comments

DEFAULT_PREFIX = "/linker"
MAX_COMMANDS_PER_COMMENT = 10
MAX_ARGS = 4


@dataclass(frozen=True)
class CommandSpec:
    """What a command does and who may run it."""

    name: str
    usage: str
    summary: str
    needs_triage: bool  # state-changing: the author or triage permission and above
    max_args: int


COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec("help", "help", "the commands enabled here and who may run each", False, 0),
        CommandSpec(
            "explain", "explain <class-id>", "explanation and workarounds of a failure class", False, 1
        ),
        CommandSpec("why", "why", "which lines matched which signature, and what was ruled out", False, 0),
        CommandSpec(
            "retry", "retry", "triage the title, body and the reporter's comments again now", True, 0
        ),
        CommandSpec("wrong", "wrong [<class-id>]", "record that the diagnosis is wrong and hide it", True, 1),
        CommandSpec("mute", "mute", "stop the bot on this issue", True, 0),
        CommandSpec("unmute", "unmute", "resume the bot on this issue", True, 0),
    )
}

# Permission levels from GitHub's collaborator permission endpoint ("role_name" is finer than
# "permission", which folds triage into read and maintain into write).
TRIAGE_OR_HIGHER = frozenset({"triage", "write", "maintain", "admin"})

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+)[^`]*?\1")


@dataclass(frozen=True)
class Command:
    """One command as written: its name, arguments and the line it stood on (1-based)."""

    name: str
    args: tuple[str, ...]
    line: int
    raw: str

    @property
    def key(self) -> str:
        """What identifies the command within a comment, to run an edited comment's new ones only."""
        return " ".join((self.name, *self.args))


@dataclass(frozen=True)
class Unknown:
    """A line that starts with the prefix but names no command; the reply lists what exists."""

    word: str
    line: int


def parse_commands(body: str | None, prefix: str = DEFAULT_PREFIX) -> list[Command | Unknown]:
    """Commands at the start of a line, outside fenced code, inline code, quotes and HTML comments."""
    if not body:
        return []
    found: list[Command | Unknown] = []
    fence: str | None = None
    in_html_comment = False
    lower_prefix = prefix.lower()
    for number, raw in enumerate(body.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        line = raw[:1000]
        fence_match = _FENCE.match(line)
        if fence is not None:
            if (
                fence_match
                and fence_match.group(1)[0] == fence[0]
                and len(fence_match.group(1)) >= len(fence)
            ):
                fence = None
            continue
        if fence_match:
            fence = fence_match.group(1)
            continue
        if in_html_comment or "<!--" in line:
            visible, in_html_comment = strip_html_comments(line, in_html_comment, joiner=" ")
            if visible is None:
                continue
            line = visible
        if line.startswith(("    ", "\t")):
            continue  # an indented code block
        stripped = line.strip()
        if stripped.startswith(">"):
            continue  # quoting someone else's command must not run it
        if "`" in stripped:
            stripped = _INLINE_CODE.sub(" ", stripped).strip()
        if not stripped.lower().startswith(lower_prefix):
            continue
        rest = stripped[len(prefix) :]
        if rest and not rest[0].isspace():
            continue  # "/linkers" or "/linker-foo" is not our prefix
        words = rest.split()
        if not words:
            found.append(Unknown("", number))
        else:
            name = words[0].lower()
            spec = COMMANDS.get(name)
            if spec is None:
                found.append(Unknown(words[0][:40], number))
            else:
                found.append(
                    Command(
                        name,
                        tuple(w[:100] for w in words[1 : 1 + min(spec.max_args, MAX_ARGS)]),
                        number,
                        stripped[:200],
                    )
                )
        if len(found) >= MAX_COMMANDS_PER_COMMENT:
            break
    return found


def new_commands(
    before: str | None, after: str | None, prefix: str = DEFAULT_PREFIX
) -> list[Command | Unknown]:
    """The commands an edit added: those in `after` beyond the ones `before` already had."""
    seen = Counter(_identity(c) for c in parse_commands(before, prefix))
    added: list[Command | Unknown] = []
    for item in parse_commands(after, prefix):
        identity = _identity(item)
        if seen[identity] > 0:
            seen[identity] -= 1
            continue
        added.append(item)
    return added


def _identity(item: Command | Unknown) -> str:
    return item.key if isinstance(item, Command) else "?" + item.word.lower()


def may_run(spec: CommandSpec, *, is_author: bool, role: str | None) -> bool:
    """Whether someone may run a command: anyone for read-only ones; the author or triage+ otherwise."""
    if not spec.needs_triage:
        return True
    return is_author or (role or "").lower() in TRIAGE_OR_HIGHER


def closest(word: str, candidates: list[str], limit: int = 3) -> list[str]:
    """The candidates nearest to a mistyped id or command, best first."""
    return difflib.get_close_matches(word, candidates, n=limit, cutoff=0.5)
