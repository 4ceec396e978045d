"""Markdown of the bot's answers to slash commands. Pure functions, no I/O."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

from bot.commands import COMMANDS, closest
from bot.knowledge import Entry, KnowledgeBase
from bot.repoconfig import RepoConfig
from bot.triage.model import TriageResult
from bot.triage.render import SAFE_COMMENT_LIMIT, fill
from bot.triage.scrub import fence_for, neutralize_mentions, safe_capture, safe_line

REPLY_PREFIX = "<!-- linker-triage-reply "
REPLY_SUFFIX = " -->"
WHO = {False: "anyone", True: "the issue's author, or triage permission and above"}
MAX_RULED_OUT = 30
MAX_PROBLEMS = 20
PARSING_RULES = (
    "A command counts at the start of a line, outside code blocks, inline code, quotes and HTML comments; "
    "several commands in one comment run in order; an edited comment runs only the commands that are new "
    "in it."
)


def shown(text: str) -> str:
    """Something a person typed, safe to echo inside inline code."""
    return neutralize_mentions(safe_capture(text)) or "?"


def reply_marker(comment_id: int, keys: Iterable[str]) -> str:
    """The hidden line that ties a reply to the command comment (and its commands) it answers."""
    digest = hashlib.sha256("\n".join(keys).encode("utf-8", "replace")).hexdigest()[:12]
    return f"{REPLY_PREFIX}{json.dumps({'to': comment_id, 'h': digest}, separators=(',', ':'))}{REPLY_SUFFIX}"


def compose_reply(marker: str, login: str, sections: Sequence[str]) -> str:
    """One reply carrying every section, addressed to the person who ran the commands."""
    body = f"{marker}\n@{login}\n\n" + "\n\n---\n\n".join(sections)
    if len(body) > SAFE_COMMENT_LIMIT:
        body = body[:SAFE_COMMENT_LIMIT] + "\n\n_(reply shortened to fit GitHub's limit)_"
    return body + "\n"


def render_help(config: RepoConfig, *, location: str | None, problems: Sequence[str] | None = None) -> str:
    """The commands enabled here and who may run each; configuration problems for maintainers."""
    prefix = config.command_prefix
    lines = [
        "#### linker-triage commands",
        "",
        "| command | who may run it | what it does |",
        "| --- | --- | --- |",
    ]
    for spec in COMMANDS.values():
        if spec.name in config.disabled_commands:
            continue
        lines.append(f"| `{prefix} {spec.usage}` | {WHO[spec.needs_triage]} | {spec.summary} |")
    lines += ["", PARSING_RULES]
    if config.disabled_commands:
        names = ", ".join(f"`{prefix} {name}`" for name in sorted(config.disabled_commands))
        lines += ["", f"Disabled in this repository's configuration: {names}."]
    where = f"`{location}`" if location else "the defaults (no `.github/linker-triage.yml` found)"
    lines += ["", f"Configuration: {where}; mode `{config.mode}`."]
    if problems:
        items = [safe_line(p, 400) for p in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            items.append(f"... and {len(problems) - MAX_PROBLEMS} more")
        fence = fence_for(items)
        lines += [
            "",
            "**Configuration problems** (shown to maintainers). An invalid configuration file is not used: "
            "the last good configuration (or the defaults) stays in effect, and invalid knowledge entries "
            "are skipped.",
            "",
            f"{fence}text",
            *items,
            fence,
        ]
    return "\n".join(lines)


def render_explain(entry: Entry) -> str:
    """One knowledge-base entry: what it means, and every workaround with when it applies."""
    values = dict(entry.defaults)
    parts = [f"#### `{entry.id}`: {fill(entry.title, values)}", f"_{entry.kind}, {entry.ecosystem}_"]
    if entry.summary:
        parts.append(fill(entry.summary.strip(), values))
    if entry.explanation:
        parts.append(fill(entry.explanation.strip(), values))
    steps = []
    for number, workaround in enumerate(entry.workarounds or entry.ask, start=1):
        when = "; ".join(f"{key}: {', '.join(vals)}" for key, vals in workaround.when.items())
        title = f"**{number}. {fill(workaround.title, values)}**" + (f" _(when {when})_" if when else "")
        steps.append(f"{title}\n\n{fill(workaround.text.strip(), values)}")
    if steps:
        parts.append(
            ("**What to try**" if entry.workarounds else "**What to ask for**") + "\n\n" + "\n\n".join(steps)
        )
    fixed = [f"- {f.component} {f.version}" + (f": {f.note}" if f.note else "") for f in entry.fixed_in]
    if fixed:
        parts.append("**Fixed in**\n\n" + "\n".join(fixed))
    refs = [
        f"- [{safe_capture(r.title).replace('[', '(').replace(']', ')')}]({r.url})" for r in entry.references
    ]
    if refs:
        parts.append("**References**\n\n" + "\n".join(refs))
    return "\n\n".join(parts)


def render_unknown_class(word: str, kb: KnowledgeBase, prefix: str) -> str:
    """An id that is not in the knowledge base, with the closest ones."""
    near = closest(word.lower(), [e.id for e in kb.entries])
    hint = (" Did you mean " + ", ".join(f"`{n}`" for n in near) + "?") if near else ""
    return (
        f"There is no failure class `{shown(word)}` in this repository's knowledge base.{hint} "
        f"`{prefix} explain <class-id>` takes an id as shown in a diagnosis."
    )


def render_unknown_command(word: str, prefix: str) -> str:
    """A prefix followed by something that is not a command."""
    near = closest(word.lower(), list(COMMANDS))
    hint = f" Did you mean `{prefix} {near[0]}`?" if near else ""
    return f"`{prefix} {shown(word)}` is not a command.{hint} `{prefix} help` lists the commands."


def render_refusal(prefix: str, name: str, login: str, role: str | None) -> str:
    """Why someone may not run a command."""
    has = f"`{role}` permission" if role else "no permission"
    return (
        f"`{prefix} {name}` may be run by {WHO[True]} in this repository; "
        f"{shown(login)} has {has} here, so nothing was changed."
    )


def render_why(result: TriageResult, *, skipped: str | None = None) -> str:
    """Which lines matched which signature, and which classes were ruled out and why."""
    parts = [
        "#### Why",
        f"Decision: **{result.decision}**: {safe_line(result.reason, 300)} "
        f"(knowledge base `{result.kb_version}`).",
    ]
    if skipped:
        parts.append(f"Note: the bot does not act on this issue: {skipped}.")
    if result.context:
        detected = ", ".join(f"{k}: {safe_capture(v)}" for k, v in sorted(result.context.items()) if v)
        if detected:
            parts.append(f"Detected: {detected}.")
    if result.matches:
        for match in result.matches:
            lines = []
            for ev in match.evidence:
                where = (
                    "title"
                    if ev.source == "title"
                    else (f"L{ev.line}" if ev.source == "body" else f"{ev.source} L{ev.line}")
                )
                lines.append(f"{where} [{ev.signature}]: {safe_line(ev.text)}")
            fence = fence_for(lines)
            parts.append(
                f"**`{match.id}`** ({match.kind}, confidence {match.confidence:.2f}) matched:\n\n"
                + f"{fence}text\n"
                + "\n".join(lines)
                + f"\n{fence}"
            )
    else:
        parts.append("No signature of the knowledge base matched.")
    if result.ruled_out:
        items = [f"- `{cid}`: {safe_line(why, 300)}" for cid, why in result.ruled_out[:MAX_RULED_OUT]]
        if len(result.ruled_out) > MAX_RULED_OUT:
            items.append(f"- ... and {len(result.ruled_out) - MAX_RULED_OUT} more")
        parts.append("**Ruled out**\n\n" + "\n".join(items))
    return "\n\n".join(parts)
