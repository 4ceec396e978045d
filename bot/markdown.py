"""Small markdown facts shared by the log extractor and the command parser."""

from __future__ import annotations


def strip_html_comments(line: str, inside: bool, joiner: str = "") -> tuple[str | None, bool]:
    """The part of a line outside `<!-- ... -->`, and whether a comment is still open after it.

    `inside` says whether a comment was open before the line; None means the whole line is hidden.
    Issue templates put their hints (often sample errors or commands) in HTML comments."""
    if inside:
        end = line.find("-->")
        if end < 0:
            return None, True
        line = line[end + 3 :]
    while "<!--" in line:
        start = line.find("<!--")
        end = line.find("-->", start + 4)
        if end < 0:
            return line[:start], True
        line = line[:start] + joiner + line[end + 3 :]
    return line, False
