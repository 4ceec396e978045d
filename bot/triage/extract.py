"""Turn issue markdown into clean log lines: CI prefixes, ANSI codes and markup gone, line numbers kept."""

from __future__ import annotations

import re
from typing import NamedTuple

from bot.markdown import strip_html_comments
from bot.triage.model import IssueText

# GitHub caps an issue body at 65,536 characters; other sources (log files on the CLI) pass their own cap.
ISSUE_TEXT_CAP = 65_536
MAX_LINE_CHARS = 4_000
MAX_TITLE_CHARS = 1_000
# The reporter's comments together: each is capped like a body, but a reporter with hundreds of long
# comments must not make every re-triage read all of them. The newest comments win (that is where the
# log the bot asked for lands).
COMMENTS_TEXT_CAP = 4 * ISSUE_TEXT_CAP

# These expressions are anchored, have no nested quantifiers, and only run on one capped line:
# they cannot backtrack badly. Knowledge-base signatures never run through `re`.
# A sequence cut short by the line cap or a bad paste ("\x1b[" and nothing after it) goes too.
_ANSI = re.compile(
    r"\x1b\[[0-9;?]{0,32}[ -/]{0,4}[@-~]?|\x1b\][^\x07\x1b]{0,512}(?:\x07|\x1b\\)|\x1b[@-Z\\-_]?"
)
_CI_PREFIX_LIST = [
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z? ?",  # GitHub Actions
    r"\[ {0,8}\d{1,7}(?:\.\d{1,3})?s\] ",  # OBS / koji [  179s]
    r"#\d{1,4} \d{1,6}\.\d{1,4} ",  # Docker BuildKit #7 4.375
    r"[\w.-]{1,64}[_-]\d{1,3} {1,32}\| ?",  # docker-compose web_1 |
    r"\| ",  # Yocto / BitBake task log
    r"\[\d\d:\d\d:\d\d(?:\.\d{1,6})?\] ",  # [12:01:02]
    r"\d\d:\d\d:\d\d(?:\.\d{1,6})? ",  # 12:01:02.123
    r"\[(?:INFO|ERROR|WARN|WARNING|DEBUG|FATAL)\] ",  # Maven and friends
    r"remote: ",  # Heroku / git push output
]
_PREFIX_FIRST = frozenset("0123456789[#|r")
# One alternation, repeated: a single C-level call strips up to three stacked prefixes (a timestamp,
# then a docker-compose service ...) and the spaces after them.
_CI_PREFIXES = re.compile("(?:(?:" + "|".join(f"(?:{p})" for p in _CI_PREFIX_LIST) + r")\s*){1,3}")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_QUOTE = re.compile(r"^ {0,3}(?:> ?)+")
_JSON_NEWLINE = "\\n"


class Line(NamedTuple):
    """One normalised line and where it came from (a tuple: a 10 MB log makes ~75,000 of them)."""

    number: int  # 0 for the title, 1.. for lines of the body or of a comment
    source: str  # "title", "body" or "comment N"
    text: str
    region: str  # code (fenced/indented/<details>), quote, prose, title


def strip_line(raw: str) -> str:
    """One line with ANSI codes, CI prefixes and surrounding spaces removed."""
    line = raw[:MAX_LINE_CHARS]
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    return _strip_prefixes(line.strip())


def _strip_prefixes(line: str) -> str:
    """A stripped line without its CI prefixes. Every prefix starts with one of _PREFIX_FIRST or
    carries a "|" (docker-compose): most lines need no regex call."""
    if line and (line[0] in _PREFIX_FIRST or "|" in line[:100]):
        match = _CI_PREFIXES.match(line)
        if match:
            return line[match.end() :]
    return line


def _split_json_escaped(line: str) -> list[str]:
    """Logs pasted as JSON strings ("...\\n...") become their real lines."""
    if _JSON_NEWLINE not in line or line.count(_JSON_NEWLINE) < 2:
        return [line]
    parts = line.replace("\\r", "").split(_JSON_NEWLINE)
    return [p.replace('\\"', '"').replace("\\t", "\t").replace("\\\\", "\\") for p in parts]


def split_markdown(text: str, source: str) -> list[Line]:
    """The lines of one markdown text with regions; HTML comments and private keys dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # What a text does not contain at all needs no check on each of its lines.
    has_markup = "<" in text
    has_fences = "`" in text or "~" in text
    has_keys = "PRIVATE KEY-----" in text
    has_json = _JSON_NEWLINE in text
    has_escapes = "\x1b" in text
    has_pipes = "|" in text
    lines: list[Line] = []
    append = lines.append
    new_line = tuple.__new__  # a NamedTuple's own constructor is a Python function: 2x slower
    fence: str | None = None
    in_html_comment = False
    in_private_key = False
    details_depth = 0
    previous_blank = True
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:MAX_LINE_CHARS]
        if fence is None and has_markup:
            # HTML comments (issue-template hints) are not evidence; they are only closed outside code.
            if in_html_comment or "<!--" in line:
                visible, in_html_comment = strip_html_comments(line, in_html_comment)
                if visible is None:
                    continue
                line = visible
            if "<" in line:
                lowered = line.lower()
                details_depth += lowered.count("<details") - lowered.count("</details>")
                details_depth = max(details_depth, 0)
        fence_match = _FENCE.match(line) if has_fences and ("`" in line or "~" in line) else None
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker
                previous_blank = False
                continue
            if (
                marker[0] == fence[0]
                and len(marker) >= len(fence)
                and not line.strip()[len(marker) :].strip()
            ):
                fence = None
                continue
        if has_keys:
            if "PRIVATE KEY-----" in line:
                in_private_key = "BEGIN" in line
                continue
            if in_private_key:
                continue
        region = "code"
        if fence is None:
            first = line[:1]
            quoted = first == ">" or (first == " " and line[:4].lstrip(" ")[:1] == ">")
            quote = _QUOTE.match(line) if quoted else None
            if quote and quote.end() > 0 and ">" in line[: quote.end()]:
                line = line[quote.end() :]
                region = "quote"
                qfence = _FENCE.match(line)
                if qfence:
                    continue
            elif (
                first in (" ", "\t")
                and line.startswith(("    ", "\t"))
                and (previous_blank or (lines and lines[-1].region == "code"))
            ):
                region = "code"
            elif details_depth > 0:
                region = "code"
            else:
                region = "prose"
        bare = line.strip()
        previous_blank = not bare
        if not bare:
            continue
        if has_json and _JSON_NEWLINE in bare:
            for part in _split_json_escaped(bare):
                cleaned = strip_line(part)
                if cleaned:
                    append(Line(number, source, cleaned, region))
            continue
        # Most lines carry no escape code and cannot start with a CI prefix: skip the call.
        if has_escapes and "\x1b" in bare:
            bare = strip_line(bare)
        elif bare[0] in _PREFIX_FIRST or (has_pipes and "|" in bare[:100]):
            bare = _strip_prefixes(bare)
        if not bare:
            continue
        append(new_line(Line, (number, source, bare, region)))
    return lines


def extract(issue: IssueText, cap: int = ISSUE_TEXT_CAP) -> list[Line]:
    """All lines of the title, the body and the reporter's comments, in order."""
    title = " ".join(issue.title[:MAX_TITLE_CHARS].splitlines())
    lines = [Line(0, "title", strip_line(title), "title")] if title.strip() else []
    lines += split_markdown((issue.body or "")[:cap], "body")
    budget = max(COMMENTS_TEXT_CAP, cap)
    kept: list[tuple[int, str]] = []
    for index in range(len(issue.comments), 0, -1):
        if budget <= 0:
            break
        text = issue.comments[index - 1][: min(cap, budget)]
        budget -= len(text)
        kept.append((index, text))
    for index, text in reversed(kept):
        lines += split_markdown(text, f"comment {index}")
    return lines
