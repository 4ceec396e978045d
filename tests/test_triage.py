"""The triage pipeline on a fixture knowledge base: decisions, evidence, context, rendering."""

from __future__ import annotations

import pytest

from bot.knowledge import KnowledgeBase
from bot.triage import triage
from bot.triage.decide import is_fixed, version_key
from bot.triage.marker import parse_marker
from bot.triage.model import IssueText
from tests.kbfixtures import fixture_kb

PUREGO = "dlopen: unhandled relocation for purego_dlopen (type 46 (SDYNIMPORT) rtype 7 (R_CALL))"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return fixture_kb()


def test_purego_diagnosis_with_evidence_and_marker(kb: KnowledgeBase) -> None:
    body = f"Go 1.21 on Ubuntu\n```\n# example.com/app\n{PUREGO}\n```\nrequire github.com/ebitengine/purego v0.5.1"
    result = triage(IssueText(title="build fails", body=body), kb)
    assert result.decision == "comment"
    assert result.class_ids == ["go-sdynimport-call-external-link"]
    match = result.matches[0]
    assert match.captures["symbol"] == "purego_dlopen"
    assert [(e.line, e.text) for e in match.evidence] == [(4, PUREGO)]
    assert result.comment is not None
    assert "-linkmode=internal" in result.comment
    assert "L4: " + PUREGO in result.comment
    assert "you show 0.5.1: upgrade" in result.comment
    marker = parse_marker(result.comment)
    assert marker is not None and marker.classes == ("go-sdynimport-call-external-link",)
    assert marker.input_hash == result.input_hash and marker.kb_version == kb.version
    assert result.context["os"] == "linux"


def test_wrapper_alone_asks(kb: KnowledgeBase) -> None:
    result = triage(IssueText(title="", body="collect2: error: ld returned 1 exit status"), kb)
    assert result.decision == "ask"
    assert result.class_ids == []
    assert result.comment is not None and "make VERBOSE=1" in result.comment
    marker = parse_marker(result.comment)
    assert marker is not None and marker.kind == "ask"


def test_wrapper_with_real_error_diagnoses(kb: KnowledgeBase) -> None:
    body = "/usr/bin/ld: cannot find -lssl\ncollect2: error: ld returned 1 exit status"
    result = triage(IssueText(title="", body=body), kb)
    assert result.decision == "comment"
    assert result.class_ids == ["native-cannot-find-library"]
    assert result.labels == ["linker-failure", "missing-library"]


def test_excludes_rule_an_entry_out(kb: KnowledgeBase) -> None:
    body = "/usr/bin/ld: skipping incompatible /usr/lib/libz.so when searching for -lz\n/usr/bin/ld: cannot find -lz"
    result = triage(IssueText(title="", body=body), kb)
    assert "native-cannot-find-library" not in result.class_ids
    assert any(cid == "native-cannot-find-library" and "ruled out" in why for cid, why in result.ruled_out)


def test_reporter_comment_brings_the_log(kb: KnowledgeBase) -> None:
    issue = IssueText(
        title="",
        body="collect2: error: ld returned 1 exit status",
        comments=("here:\n```\n/usr/bin/ld: cannot find -lcrypto\n```",),
    )
    result = triage(issue, kb)
    assert result.decision == "comment"
    assert result.matches[0].evidence[0].source == "comment 1"
    assert "comment 1 L3: /usr/bin/ld: cannot find -lcrypto" in (result.comment or "")


def test_no_failure_is_silent(kb: KnowledgeBase) -> None:
    result = triage(IssueText(title="Feature request", body="Please add dark mode."), kb)
    assert (result.decision, result.comment, result.matches) == ("silent", None, [])


def test_pull_request_that_states_the_fix_is_silent(kb: KnowledgeBase) -> None:
    body = "fix: link libssl\n\nThis PR fixes:\n```\n/usr/bin/ld: cannot find -lssl\n```"
    result = triage(IssueText(title="fix(build): link ssl", body=body, is_pull_request=True), kb)
    assert result.decision == "silent"


def test_workarounds_follow_the_os(kb: KnowledgeBase) -> None:
    mac = triage(IssueText(title="", body="macOS 14\nld: library not found for -lintl"), kb)
    assert "brew install intl" in (mac.comment or "")
    assert "apt-get" not in (mac.comment or "")
    linux = triage(IssueText(title="", body="Ubuntu 22.04\n/usr/bin/ld: cannot find -lintl"), kb)
    assert "sudo apt-get install libintl-dev" in (linux.comment or "")


def test_hostile_text_on_the_matched_line_is_not_echoed(kb: KnowledgeBase) -> None:
    line = "/usr/bin/ld: cannot find -lssl @octocat ghp_abcdefghijklmnopqrstuvwxyz0123456789 /home/jane/x ```"
    result = triage(IssueText(title="", body=line), kb)
    comment = result.comment or ""
    assert result.decision == "comment"
    for bad in ("@octocat", "ghp_abcdef", "/home/jane"):
        assert bad not in comment
    assert "\n````text\n" in comment  # the fence is longer than the backticks in the line


def test_captures_cannot_inject_markdown(kb: KnowledgeBase) -> None:
    result = triage(IssueText(title="", body="/usr/bin/ld: cannot find -l@evil`x"), kb)
    assert "@evil" not in (result.comment or "")


def test_backtracking_bait_then_real_error(kb: KnowledgeBase) -> None:
    bait = ("a" * 50 + "!") * 1_170 + "\n" + "(" * 1_000 + "\n"
    result = triage(IssueText(title="", body=bait + "/usr/bin/ld: cannot find -lssl\n"), kb)
    assert result.class_ids == ["native-cannot-find-library"]


def test_comment_fits_github_limit(kb: KnowledgeBase) -> None:
    body = "\n".join(f"/usr/bin/ld: cannot find -l{'x' * 200}{i}" for i in range(500))
    result = triage(IssueText(title="", body=body), kb)
    assert result.comment is not None and len(result.comment) < 65_536


@pytest.mark.parametrize(
    ("found", "fixes", "fixed"),
    [
        ("0.5.1", ["v0.5.2", "v0.6.0-alpha.4"], False),
        ("v0.5.2", ["v0.5.2", "v0.6.0-alpha.4"], True),
        ("0.6.0-alpha.3", ["v0.5.2", "v0.6.0-alpha.4"], False),
        ("0.6.0", ["v0.5.2", "v0.6.0-alpha.4"], True),
        ("1.0.0", ["v0.5.2"], True),
        ("2.38", ["2.39"], False),
    ],
)
def test_is_fixed(found: str, fixes: list[str], fixed: bool) -> None:
    assert is_fixed(found, fixes) is fixed


def test_version_key_orders_prereleases_first() -> None:
    assert version_key("1.2.0-rc.1") < version_key("1.2.0") < version_key("1.2.1")
    assert version_key("v0.6.0-alpha.4") < version_key("v0.6.0-alpha.10")


def test_patterns_never_match_across_lines() -> None:
    from bot.patterns import PatternSet

    patterns = PatternSet([r"-lpthread[^x]+capnpc", r"cannot find -l(?P<lib>\w+)"])
    hits = patterns.scan(["a -lpthread -lpthread", "libtool: capnpc-c++.o", "/usr/bin/ld: cannot find -lz é"])
    assert [(h.index, h.line, h.groups) for h in hits] == [(1, 2, {"lib": "z"})]
    assert (hits[0].start, hits[0].end) == (13, 28)


@pytest.mark.parametrize(
    ("text", "column", "inside"),
    [
        ("you get the expected `ld: cannot find -lfoo`.", 22, True),
        ("fails with ``undefined reference to `foo'``", 13, True),
        ("main.c:(.text+0x1a): undefined reference to `dlsym'", 21, False),
        ("plain /usr/bin/ld: cannot find -lz", 6, False),
    ],
)
def test_inside_inline_code(text: str, column: int, inside: bool) -> None:
    from bot.triage.decide import _inside_inline_code

    assert _inside_inline_code(text, column) is inside


def test_defaults_render_as_plain_text_and_captures_as_code() -> None:
    from bot.triage.render import TemplateValues, fill

    values = TemplateValues({"library": "ssl", "symbol": "the symbol"})
    values.plain = frozenset({"symbol"})
    assert fill("{library} and {symbol}\n```sh\napt install lib{library}-dev\n```", values) == (
        "`ssl` and the symbol\n```sh\napt install libssl-dev\n```"
    )


def test_only_confident_entries_supersede(tmp_path: pytest.TempPathFactory) -> None:
    import shutil
    from pathlib import Path

    import yaml

    from bot.knowledge import load_knowledge_base
    from tests.kbfixtures import FIXTURE_KB_DIR

    root = Path(str(tmp_path)) / "kb"
    shutil.copytree(FIXTURE_KB_DIR, root)
    weak = yaml.safe_load((root / "native" / "native-cannot-find-library.yaml").read_text())
    weak.update(
        id="native-weak-specific",
        specificity=90,
        supersedes=["native-cannot-find-library"],
        signatures=[{"name": "weak", "pattern": "cannot find -l(?P<library>ssl)", "confidence": 0.4}],
        excludes=[],
    )
    (root / "native" / "native-weak-specific.yaml").write_text(yaml.safe_dump(weak))
    kb = load_knowledge_base(root)
    result = triage(IssueText(title="", body="/usr/bin/ld: cannot find -lssl"), kb)
    assert result.class_ids == ["native-cannot-find-library"]


def test_mentions_are_kept_verbatim_inside_code_blocks_only() -> None:
    from bot.triage.render import TemplateValues, fill

    values = TemplateValues({"symbol": "___WSAFDIsSet@8"})
    text = fill("Missing {symbol}.\n```bat\nfindstr {symbol}\n```", values)
    assert "findstr ___WSAFDIsSet@8\n" in text
    assert "`___WSAFDIsSet@\u200b8`" in text


def test_body_line_starting_with_fix_is_not_a_fix_statement(kb: KnowledgeBase) -> None:
    body = "Fix: I set LD_LIBRARY_PATH and tried again, same thing\n```\n/usr/bin/ld: cannot find -lssl\n```"
    assert triage(IssueText(title="", body=body), kb).decision == "comment"
    titled = triage(IssueText(title="fix(build): link ssl", body=body), kb)
    assert titled.decision == "silent"


def test_ask_comment_offers_mute_not_wrong(kb: KnowledgeBase) -> None:
    result = triage(IssueText(title="", body="collect2: error: ld returned 1 exit status"), kb)
    assert result.comment is not None
    assert "/linker mute" in result.comment and "Wrong diagnosis" not in result.comment


@pytest.mark.parametrize("where", [0, 1, 9_999, 15_000, 19_999])
def test_line_numbers_survive_chunking(where: int) -> None:
    from bot.patterns import PatternSet

    lines = [f"ordinary build output line {i} with some padding text" for i in range(20_000)]
    lines[where] = "/usr/bin/ld: cannot find -lzstd"
    lines[12_345] = "x" * 70_000  # one line longer than a chunk stays whole
    hits = PatternSet([r"cannot find -l(?P<lib>\w+)", r"^x+$"]).scan(lines)
    assert [(h.index, h.line) for h in hits] == sorted([(0, where), (1, 12_345)], key=lambda t: (t[1], t[0]))
    assert hits[[h.index for h in hits].index(0)].groups == {"lib": "zstd"}


def test_a_line_with_a_line_break_is_scanned_as_one_line() -> None:
    from bot.patterns import PatternSet

    hits = PatternSet([r"cannot find -lz"]).scan(["a\nb", "/usr/bin/ld: cannot find -lz"])
    assert [(h.line, h.start) for h in hits] == [(1, 13)]


def hostile(size: int) -> str:
    """Nested-quantifier bait, 100 KB single lines and 20,000 open parentheses, then a real error."""
    unit = ("a" * 60 + "!" + "(" * 40 + "x" * 30 + " " * 30 + "\n") * 100
    unit += "(" * 20_000 + "\n" + "ab" * 50_000 + "\n"
    text = (unit * (size // len(unit) + 1))[:size]
    return text + "\n/usr/bin/ld: cannot find -lssl\n"


def test_hostile_input_costs_work_linear_in_its_size(kb: KnowledgeBase) -> None:
    """RE2 runs in time linear in the bytes it is given: show the bytes scanned grow with the input."""
    from bot.triage import compile_knowledge_base

    pattern_set = compile_knowledge_base(kb).pattern_set
    scanned = []
    for size in (100_000, 1_000_000):
        before = pattern_set.scanned_bytes
        result = triage(IssueText(title="", body=hostile(size)), kb, cap=2 * size)
        scanned.append(pattern_set.scanned_bytes - before)
        assert result.class_ids == ["native-cannot-find-library"]
        assert scanned[-1] <= size + 100  # each byte once (lines are only shortened by extraction)
    # Ten times the input, about ten times the work (lines over 4,000 characters are cut, hence the
    # slack); anything superlinear would show as a ratio near 100.
    assert 5 <= scanned[1] / scanned[0] <= 15
