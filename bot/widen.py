"""Widen a pattern's large counted repetitions, so the one scan set stays small; the exact one confirms.

`.{0,300}` compiles to 300 copies of `.`: in an RE2 set such gaps multiply DFA states and slow the
whole scan. The scan set only has to say which patterns *may* match in a chunk (the exact pattern then
locates the hits), so it holds a superset: `X{m,n}` with a bound above the threshold becomes `X*` (m = 0)
or `X+` (m > 0), which matches every text the original matches.
"""

from __future__ import annotations

import re

WIDEN_ABOVE = 16
_COUNT = re.compile(r"\{(\d+)(,(\d*))?\}")


def widen_repeats(pattern: str, above: int = WIDEN_ABOVE) -> str:
    """The pattern with every counted repetition bounded above `above` made unbounded (RE2 syntax)."""
    out: list[str] = []
    i = 0
    size = len(pattern)
    while i < size:
        char = pattern[i]
        if char == "\\":
            end = _escape_end(pattern, i)
            out.append(pattern[i:end])
            i = end
            continue
        if char == "[":
            end = _class_end(pattern, i)
            out.append(pattern[i:end])
            i = end
            continue
        if char == "{":
            count = _COUNT.match(pattern, i)
            if count is not None:
                low = int(count[1])
                high = None if count[2] and not count[3] else int(count[3] if count[2] else count[1])
                if high is None or high > above or low > above:
                    out.append("*" if low == 0 else "+")
                else:
                    out.append(count[0])
                i = count.end()
                continue
        out.append(char)
        i += 1
    return "".join(out)


def _escape_end(pattern: str, start: int) -> int:
    """Where the escape at `start` ends: `\\Q...\\E`, `\\p{Greek}`, `\\x{263a}` or one escaped character."""
    kind = pattern[start + 1 : start + 2]
    if kind == "Q":
        close = pattern.find("\\E", start + 2)
        return len(pattern) if close < 0 else close + 2
    if kind in ("p", "P", "x") and pattern[start + 2 : start + 3] == "{":
        close = pattern.find("}", start + 3)
        return len(pattern) if close < 0 else close + 1
    return min(start + 2, len(pattern))


def _class_end(pattern: str, start: int) -> int:
    """Where the bracket expression at `start` ends (a leading `]` or `^]` is a literal, as in RE2)."""
    i = start + 1
    if pattern[i : i + 1] == "^":
        i += 1
    if pattern[i : i + 1] == "]":
        i += 1
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i = _escape_end(pattern, i)
            continue
        if pattern.startswith("[:", i):
            close = pattern.find(":]", i + 2)
            if close >= 0:
                i = close + 2
                continue
        if char == "]":
            return i + 1
        i += 1
    return len(pattern)
