"""The scanner: widened set patterns, chunked bytes, threads and saturated-pattern variants."""

from __future__ import annotations

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

import bot.patterns as patterns_module
from bot.knowledge import default_knowledge_dir, load_knowledge_base
from bot.patterns import PatternSet
from bot.triage import compile_knowledge_base
from bot.widen import widen_repeats


@pytest.mark.parametrize(
    ("pattern", "widened"),
    [
        (r"a.{0,300}b", r"a.*b"),
        (r"a.{1,300}?b", r"a.+?b"),
        (r"x{3}y{2,5}z{0,16}", r"x{3}y{2,5}z{0,16}"),  # small bounds stay exact
        (r"x{17}", r"x+"),
        (r"x{0,}y{2,}", r"x*y+"),
        (r"[^)]{0,600}\)", r"[^)]*\)"),
        (r"[a{0,300}]", r"[a{0,300}]"),  # inside a bracket expression braces are literals
        (r"[]{0,99}]x", r"[]{0,99}]x"),  # a leading ] is a literal member
        (r"[^]{0,99}]x", r"[^]{0,99}]x"),
        (r"[[:alpha:]]{0,99}", r"[[:alpha:]]*"),
        (r"\{0,300}", r"\{0,300}"),  # an escaped brace is a literal
        (r"\p{Greek}{0,40}", r"\p{Greek}*"),
        (r"\x{263a}{1,40}", r"\x{263a}+"),
        (r"\Q{0,99}\E.{0,99}", r"\Q{0,99}\E.*"),
        (r"a{,5}", r"a{,5}"),  # not a repetition in RE2: a literal
        (r"(?:ab|cd){2,300}", r"(?:ab|cd)+"),
    ],
)
def test_widen_repeats(pattern: str, widened: str) -> None:
    assert widen_repeats(pattern) == widened
    re2.compile(widened)


def _knowledge_patterns_and_texts() -> tuple[list[str], list[str]]:
    kb = load_knowledge_base(default_knowledge_dir())
    compiled = compile_knowledge_base(kb)
    texts = [
        line for entry in kb.entries for ex in entry.positive + entry.negative for line in ex.text.split("\n")
    ]
    return compiled.pattern_set.patterns, texts


def test_widened_knowledge_patterns_match_whatever_the_exact_ones_match() -> None:
    patterns, texts = _knowledge_patterns_and_texts()
    checked = 0
    for pattern in patterns:
        exact, wide = re2.compile(pattern), re2.compile(widen_repeats(pattern))
        for text in texts:
            if exact.search(text):
                checked += 1
                assert wide.search(text), (pattern, text)
    assert checked > 500  # the examples exercise most patterns


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "(", ")", "é", " ", "{", "}", "0"]), max_size=60).map("".join),
    st.sampled_from([r"a[^)]{0,20}\)", r"(?:a|é){2,30}b?", r"\(.{0,18}\)", r"[a-z]{17,}", r"\{{0,30}a"]),
)
def test_widening_is_a_superset_on_any_text(text: str, pattern: str) -> None:
    if re2.search(pattern, text):
        assert re2.search(widen_repeats(pattern), text)


def _log(lines: int) -> bytes:
    rows = [f"gcc -O2 -c src/module{i}.c -o build/m{i}.o  # linux build" for i in range(lines)]
    rows[lines // 3] = "/usr/bin/ld: cannot find -lzstd"
    rows[2 * lines // 3] = "/usr/bin/ld: cannot find -lssl"
    return ("\n".join(rows) + "\n").encode()


PATTERNS = [r"\bgcc\b", r"cannot find -l(?P<lib>\w+)", r"\.c\b", r"\blinux\b", r"module\d+\.c -o"]
LIMITS = [3, 40, 1, 2, 5]


def _key(hits: list[patterns_module.Hit]) -> list[tuple[int, int, int, int, tuple[tuple[str, str], ...]]]:
    return [(h.index, h.line, h.start, h.end, tuple(sorted(h.groups.items()))) for h in hits]


def test_threads_give_the_same_hits_as_one_thread() -> None:
    data = _log(60_000)  # ~3 MB: above the size where threads are used
    assert len(data) > patterns_module.PARALLEL_MIN_BYTES
    serial = PatternSet(PATTERNS, LIMITS).scan_bytes(data)
    threaded = PatternSet(PATTERNS, LIMITS).scan_bytes(data, workers=2)
    assert _key(serial) == _key(threaded)
    assert [(h.index, h.line, h.groups) for h in serial if h.index == 1] == [
        (1, 20_000, {"lib": "zstd"}),
        (1, 40_000, {"lib": "ssl"}),
    ]
    assert [h.line for h in serial if h.index == 0] == [0, 1, 2]  # the hit limit keeps the first ones


@pytest.mark.parametrize("workers", [1, 2])
def test_saturated_patterns_leave_the_set_without_changing_the_hits(
    workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _log(60_000)
    reference = _key(PatternSet(PATTERNS, LIMITS).scan_bytes(data, workers=workers))
    monkeypatch.setattr(patterns_module, "VARIANT_MIN_REMAINING", 0)
    switching = PatternSet(PATTERNS, LIMITS)
    assert _key(switching.scan_bytes(data, workers=workers)) == reference
    # gcc, .c, linux and the command line reach their limits in the first chunk and keep firing.
    assert frozenset({0, 2, 3, 4}) in switching._variants
    assert _key(switching.scan_bytes(data, workers=workers)) == reference  # the cached variant


def test_no_variant_is_compiled_for_a_small_input() -> None:
    pattern_set = PatternSet(PATTERNS, LIMITS)
    pattern_set.scan_bytes(_log(60_000))
    assert not pattern_set._variants  # 3 MB left is below VARIANT_MIN_REMAINING


def test_scan_bytes_counts_every_byte_once_and_agrees_with_scan() -> None:
    data = _log(20_000)
    pattern_set = PatternSet(PATTERNS, LIMITS)
    pattern_set.scan_bytes(data)
    cuts = len(patterns_module._chunk_spans(data)) - 1  # the line end at each cut is in no chunk
    assert cuts > 10
    assert pattern_set.scanned_bytes == len(data) - cuts
    lines = data.decode().split("\n")
    assert _key(PatternSet(PATTERNS, LIMITS).scan(lines)) == _key(
        PatternSet(PATTERNS, LIMITS).scan_bytes(data)
    )


def test_a_widened_pattern_that_only_loosely_matches_gives_no_hit() -> None:
    # The set sees `a.*b` and names the pattern; the exact pattern finds no gap short enough.
    pattern_set = PatternSet([r"a.{0,20}b"])
    assert pattern_set.scan(["a" + "x" * 40 + "b", "axxb"]) == [patterns_module.Hit(0, 1, {}, 0, 4)]
