"""Markdown for the bot's comment: diagnosis, workarounds for this toolchain, evidence, references."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from bot.knowledge import TEMPLATE_FIELD, Entry, Workaround
from bot.triage.context import Context
from bot.triage.decide import Candidate, Verdict
from bot.triage.decide import version_notes as _version_notes
from bot.triage.marker import Marker
from bot.triage.scrub import fence_for, safe_capture, safe_line

_PLAIN_VERSION = re.compile(r"v?[0-9A-Za-z.+-]{1,40}")
GITHUB_COMMENT_LIMIT = 65_536
SAFE_COMMENT_LIMIT = 60_000
VISIBLE_WORKAROUNDS = 2  # the rest fold into <details> so the comment stays short
ASK_FOOTER = (
    "<sub>Automated triage by linker-triage (knowledge base `{kb}`). Not a link or load failure? Reply "
    "`/linker mute` and I'll stay out of this issue.</sub>"
)
FOOTER = (
    "<sub>Automated triage by linker-triage (knowledge base `{kb}`). Wrong diagnosis? Reply "
    "`/linker wrong` or `/linker wrong <class-id>`; `/linker why` shows what matched.</sub>"
)


class TemplateValues(dict[str, str]):
    """Values for a template; keys in `plain` came from the entry's defaults, not from the issue."""

    plain: frozenset[str] = frozenset()
    _prepared: tuple[dict[str, str], dict[str, str]] | None = None

    def prepared(self) -> tuple[dict[str, str], dict[str, str]]:
        """(for prose, for code blocks): made safe once, however many templates use them."""
        if self._prepared is None:
            safe = {k: safe_capture(v) for k, v in self.items() if v}
            prose = {k: v if k in self.plain else f"`{v}`" for k, v in safe.items()}
            code = {k: safe_capture(v, in_code_block=True) for k, v in self.items() if v}
            self._prepared = (prose, code)
        return self._prepared


def fill(template: str, values: Mapping[str, str]) -> str:
    """Fill `{name}` fields: captures as inline code in prose, raw inside fenced blocks, made safe first."""
    if "{" not in template:
        return template
    prose, code = (values if isinstance(values, TemplateValues) else TemplateValues(values)).prepared()
    out: list[str] = []
    in_fence: str | None = None
    for line in template.split("\n"):
        stripped = line.lstrip()
        is_fence = stripped.startswith(("```", "~~~"))
        if in_fence is None:
            if is_fence:
                in_fence = stripped[:3]
                out.append(line)
                continue
            out.append(_format(line, prose))
        else:
            if is_fence and stripped.startswith(in_fence):
                in_fence = None
                out.append(line)
                continue
            out.append(_format(line, code))
    return "\n".join(out)


def _format(line: str, values: Mapping[str, str]) -> str:
    return TEMPLATE_FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), line)


def template_values(candidate: Candidate) -> TemplateValues:
    """Captured names, falling back to the entry's defaults (which render as plain text)."""
    values = TemplateValues(candidate.entry.defaults)
    captured = {k: v for k, v in candidate.captures.items() if v}
    values.update(captured)
    values.plain = frozenset(set(candidate.entry.defaults) - set(captured))
    return values


def version_notes(candidate: Candidate) -> list[str]:
    """decide.version_notes with the versions read off the issue made safe to echo: scrubbed, and as
    inline code unless they are plain version strings (a repository's own `detect` may capture more)."""
    shown = {index: safe_capture(found) for index, found in candidate.detected_versions.items()}
    notes = _version_notes(replace(candidate, detected_versions=shown))
    unusual = {v for v in shown.values() if v and not _PLAIN_VERSION.fullmatch(v)}
    for found in sorted(unusual, key=len, reverse=True):
        notes = [note.replace(f"you show {found}", f"you show `{found}`") for note in notes]
    return notes


def choose(workarounds: tuple[Workaround, ...], context: Context) -> list[Workaround]:
    """The workarounds that fit the detected context; all of them when none fits."""
    fitting = [w for w in workarounds if context.fits(w.when)]
    return fitting or list(workarounds)


def _evidence_block(candidate: Candidate) -> str:
    lines = []
    for ev in candidate.evidence:
        where = (
            f"L{ev.line}"
            if ev.source == "body"
            else ("title" if ev.source == "title" else f"{ev.source} L{ev.line}")
        )
        lines.append(f"{where}: {safe_line(ev.text)}")
    fence = fence_for(lines)
    return f"{fence}text\n" + "\n".join(lines) + f"\n{fence}"


def _references(entry: Entry) -> str:
    items = []
    for ref in entry.references:
        title = safe_capture(ref.title).replace("[", "(").replace("]", ")")
        items.append(f"- [{title}]({ref.url})")
    return "\n".join(items)


def render_diagnosis(candidate: Candidate, context: Context, *, primary: bool) -> str:
    """One diagnosis section."""
    entry = candidate.entry
    values = template_values(candidate)
    heading = "###" if primary else "####"
    parts = [f"{heading} {fill(entry.title, values)}"]
    if entry.kind == "warning":
        parts.append("_This is a warning, not the cause of a failure._")
    parts.append(fill(entry.explanation.strip(), values))
    chosen = choose(entry.workarounds, context)
    if chosen:
        steps = []
        for number, workaround in enumerate(chosen, start=1):
            title, text = fill(workaround.title, values), fill(workaround.text.strip(), values)
            steps.append(f"**{number}. {title}**\n\n{text}")
        shown = "\n\n".join(steps[:VISIBLE_WORKAROUNDS])
        if len(steps) > VISIBLE_WORKAROUNDS:
            rest = len(steps) - VISIBLE_WORKAROUNDS
            shown += (
                f"\n\n<details><summary>{rest} more thing{'s' if rest > 1 else ''} to try</summary>\n\n"
                + "\n\n".join(steps[VISIBLE_WORKAROUNDS:])
                + "\n\n</details>"
            )
        parts.append("**What to try**\n\n" + shown)
    notes = version_notes(candidate)
    if notes:
        parts.append("\n".join(f"- {note}" for note in notes))
    parts.append(f"**Evidence** (confidence {candidate.confidence:.2f})\n\n{_evidence_block(candidate)}")
    refs = _references(entry)
    if refs:
        parts.append(f"<details><summary>References</summary>\n\n{refs}\n\n</details>")
    return "\n\n".join(parts)


def render_comment(verdict: Verdict, context: Context, marker: Marker) -> str | None:
    """The whole comment for a verdict (None when the bot stays silent)."""
    if verdict.decision == "silent":
        return None
    footer = (ASK_FOOTER if verdict.decision == "ask" else FOOTER).format(kb=marker.kb_version)
    if verdict.decision == "ask":
        body = render_ask(verdict.wrappers[0], context)
    else:
        sections = [render_diagnosis(verdict.diagnoses[0], context, primary=True)]
        for other in verdict.diagnoses[1:]:
            summary = safe_capture(fill(other.entry.title, template_values(other))).replace("<", "&lt;")
            sections.append(
                f"<details><summary>Also found: {summary}</summary>\n\n"
                + render_diagnosis(other, context, primary=False)
                + "\n\n</details>"
            )
        body = "\n\n---\n\n".join(sections)
    comment = f"{marker.render()}\n{body}\n\n{footer}\n"
    if len(comment) > SAFE_COMMENT_LIMIT:
        shortened = "\n\n_(comment shortened to fit GitHub's limit)_\n\n"
        comment = comment[:SAFE_COMMENT_LIMIT] + shortened + footer
    return comment


def render_ask(wrapper: Candidate, context: Context) -> str:
    """Ask once for the output that decides, with the command for the detected toolchain."""
    entry = wrapper.entry
    values = template_values(wrapper)
    chosen = choose(entry.ask, context)
    steps = "\n\n".join(f"**{fill(w.title, values)}**\n\n{fill(w.text.strip(), values)}" for w in chosen)
    explanation = (
        fill(entry.explanation.strip(), values)
        if entry.explanation
        else ("This line is a summary printed after the real error: it says that something failed, not why.")
    )
    return (
        "### The log stops before the decisive error\n\n"
        f"{explanation}\n\n"
        f"{_evidence_block(wrapper)}\n\n"
        "Could you add the complete output of the failing step? The line above says where the cause is "
        "printed.\n\n"
        f"{steps}\n\n"
        "_I'll look again as soon as the full output is in this issue._"
    )
