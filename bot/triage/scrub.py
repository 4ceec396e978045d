"""Make text from an issue safe to echo: no secrets, no personal data, no mentions, no markup escape."""

from __future__ import annotations

import re

MAX_QUOTED_CHARS = 300
MAX_CAPTURE_CHARS = 120
# Scrubbing runs before shortening (a token cut in half no longer looks like one, and half a token is
# still a leak), on at most this many characters past the cut: longer than any secret it recognises.
SCRUB_MARGIN = 1024
ZWSP = "\u200b"

# Each expression is linear: literal anchors followed by single character classes, on a capped line.
_SECRETS = [
    # Keyword rules first: the prefix rules below are greedy and could swallow a keyword glued after them.
    (
        re.compile(
            r"(?i)\b(aws_secret_access_key|secret|password|passwd|token|api[_-]?key)(\s{0,3}[=:]\s{0,3})[^\s'\"]{6,}"
        ),
        r"\1\2[redacted]",
    ),
    # The value stops where the next keyword starts: "Bearer <t1>Bearer <t2>" hides both values.
    (
        re.compile(r"(?i)(bearer|basic|token)\s+(?:(?!bearer|basic|token)[A-Za-z0-9._~+/=-]){16,}"),
        r"\1 [redacted]",
    ),
    # No leading \b on the distinctive prefixes: a token glued to a word ("-lsslghp_...") is still a token.
    (re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{20,255})"), "[redacted token]"),
    (re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}"), "[redacted key]"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "[redacted token]"),
    (
        re.compile(r"\b(?:glpat-[A-Za-z0-9_-]{20,}|npm_[A-Za-z0-9]{36}|pypi-[A-Za-z0-9_-]{50,})"),
        "[redacted token]",
    ),
    (re.compile(r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----.*"), "[redacted private key]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), "[redacted jwt]"),
]
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}")
_HOMES = [
    (re.compile(r"(/home/|/Users/)(?!<user>)[^/\s:'\"`]+"), r"\1<user>"),
    (
        re.compile(r"(?i)([A-Z]:[\\/]+(?:Users|Documents and Settings)[\\/]+)(?!<user>)[^\\/\s:'\"`]+"),
        r"\1<user>",
    ),
    (re.compile(r"(/root)(?=/)"), r"\1"),
]
_MENTION = re.compile(r"@(?=[A-Za-z0-9])")
# Control characters, bidirectional overrides and marks ("Trojan Source"), zero-width characters (they
# would hide a token or a mention from the patterns below) and lone surrogates (not valid UTF-8, so
# GitHub would refuse the whole comment) have no place in a quoted log line.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ud800-\udfff]"
)


def scrub(text: str) -> str:
    """Remove what looks like a secret, an e-mail address or a home-directory user name."""
    # Home directories first: a token glued in front of `C:\Users\jane` would otherwise take the drive
    # letter with it, and the user name would no longer look like one.
    for pattern, replacement in _HOMES:
        text = pattern.sub(replacement, text)
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return _EMAIL.sub("[email]", text)


def neutralize_mentions(text: str) -> str:
    """`@name` and `@org/team` can't notify anyone once a zero-width space follows the @."""
    return _MENTION.sub("@" + ZWSP, text)


def safe_line(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """An issue line ready to sit inside a code block of ours."""
    text = _INVISIBLE.sub("", text[: limit + SCRUB_MARGIN].replace("\r", " ").replace("\n", " "))
    text = scrub(text)
    if len(text) > limit:
        text = text[:limit] + " …"
    return neutralize_mentions(text)


def safe_capture(value: str, *, in_code_block: bool = False) -> str:
    """A captured name (symbol, library) ready for a template: one short line, no backticks or fences.

    Inside a fenced block GitHub renders no mentions, and a zero-width space would break a pasted
    command (`___WSAFDIsSet@8`), so mentions are only neutralized outside code blocks."""
    value = value[: MAX_CAPTURE_CHARS + SCRUB_MARGIN]
    value = _INVISIBLE.sub("", value).replace("`", "").replace("~~~", "")
    value = value.replace("\n", " ").replace("\r", " ").strip()
    value = scrub(value)
    if len(value) > MAX_CAPTURE_CHARS:
        value = value[:MAX_CAPTURE_CHARS] + "…"
    return value if in_code_block else neutralize_mentions(value)


def fence_for(lines: list[str]) -> str:
    """A backtick fence longer than any backtick run in the lines, so they cannot close it."""
    longest = 0
    for line in lines:
        run = 0
        for char in line:
            run = run + 1 if char == "`" else 0
            longest = max(longest, run)
    return "`" * max(3, longest + 1)
