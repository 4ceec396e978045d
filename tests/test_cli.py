"""The CLI contracts: match (text, JSON Lines, payloads, stdin), kb check, kb list, eval."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from tests.kbfixtures import FIXTURE_KB_DIR

ROOT = Path(__file__).resolve().parent.parent
PUREGO = "dlopen: unhandled relocation for purego_dlopen (type 46 (SDYNIMPORT) rtype 7 (R_CALL))"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--knowledge", str(FIXTURE_KB_DIR), *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_match_prints_the_comment(tmp_path: Path) -> None:
    issue = tmp_path / "issue.md"
    issue.write_text(f"```\n{PUREGO}\n```\n")
    code, out, _ = run("match", str(issue))
    assert code == 0
    assert out.startswith("<!-- linker-triage ")
    assert "-linkmode=internal" in out


def test_match_json_lines_contract(tmp_path: Path) -> None:
    positive = tmp_path / "a.md"
    positive.write_text(PUREGO)
    negative = tmp_path / "b.md"
    negative.write_text("Feature request: dark mode")
    wrapper = tmp_path / "c.md"
    wrapper.write_text("collect2: error: ld returned 1 exit status")
    code, out, _ = run("match", "--json", str(positive), str(negative), str(wrapper))
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["decision"] for r in records] == ["comment", "silent", "ask"]
    first = records[0]
    assert first["input"] == str(positive)
    assert set(first) >= {"input", "decision", "matches", "comment"}
    match = first["matches"][0]
    assert set(match) >= {"id", "title", "confidence", "evidence", "workarounds"}
    assert match["id"] == "go-sdynimport-call-external-link"
    assert match["evidence"] == [{"line": 1, "text": PUREGO}]
    assert isinstance(match["confidence"], float)
    assert records[1]["comment"] is None and records[1]["matches"] == []


def test_match_reads_webhook_payloads(tmp_path: Path) -> None:
    payload = {
        "action": "opened",
        "issue": {"title": "t", "body": None, "number": 1, "user": {"login": "a"}},
        "comment": {"body": f"```\n{PUREGO}\n```"},
        "repository": {"full_name": "o/r"},
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    code, out, _ = run("match", "--json", str(path))
    assert code == 0
    assert json.loads(out)["decision"] == "comment"


def test_match_rejects_non_issue_json(tmp_path: Path) -> None:
    path = tmp_path / "ping.json"
    path.write_text('{"zen": "hi"}')
    code, _, err = run("match", str(path))
    assert code == 1 and "not an issues or issue_comment webhook payload" in err


def test_match_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(PUREGO))
    code, out, _ = run("match", "--json", "-")
    assert code == 0 and json.loads(out)["decision"] == "comment"


def test_kb_check_passes_on_fixture() -> None:
    code, out, _ = run("kb", "check")
    assert code == 0
    assert "0 failed" in out


def test_kb_check_fails_on_a_failing_example(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE_KB_DIR, tmp_path / "kb")
    path = tmp_path / "kb" / "native" / "native-cannot-find-library.yaml"
    path.write_text(
        path.read_text().replace('"ld: library not found for -lintl', '"ld: library found for -lintl')
    )
    out, err = io.StringIO(), io.StringIO()
    code = main(["--knowledge", str(tmp_path / "kb"), "kb", "check"], out=out, err=err)
    assert code == 1
    assert "native/native-cannot-find-library.yaml: examples.positive[1]" in out.getvalue()


def test_kb_check_refuses_a_broken_entry(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE_KB_DIR, tmp_path / "kb")
    path = tmp_path / "kb" / "native" / "native-cannot-find-library.yaml"
    path.write_text(path.read_text() + "\nflavour: salty\n")
    with pytest.raises(SystemExit) as info:
        main(["--knowledge", str(tmp_path / "kb"), "kb", "check"], out=io.StringIO(), err=io.StringIO())
    assert info.value.code == 2


def test_kb_list_markdown() -> None:
    code, out, _ = run("kb", "list", "--markdown")
    assert code == 0
    assert "| `native-cannot-find-library` | diagnosis |" in out


def test_python_m_bot_runs_as_a_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "--knowledge", str(FIXTURE_KB_DIR), "match", "-"],
        input=PUREGO,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "linkmode=internal" in proc.stdout


def test_serve_refuses_to_start_on_a_broken_entry(tmp_path: Path, private_key: str) -> None:
    """The server names the file, the key and the problem, and exits before listening."""
    import os

    from tests.conftest import settings_env

    kb = tmp_path / "kb"
    shutil.copytree(FIXTURE_KB_DIR, kb)
    broken = kb / "native" / "native-cannot-find-library.yaml"
    broken.write_text(broken.read_text().replace("confidence: 0.9", "confidence: lots", 1))
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    env = dict(os.environ, **settings_env(private_key, tmp_path, KNOWLEDGE_DIR=str(kb), PORT=port))
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "native/native-cannot-find-library.yaml: signatures[0].confidence: must be a number" in proc.stderr
    assert "refuses to start" in proc.stderr
