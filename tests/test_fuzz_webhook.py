"""Property tests for webhook deliveries: whatever the headers and the body, only 200/202/400/401/413.

The parser is driven directly (fast, thousands of shapes) and through the real aiohttp app and SQLite
store (fewer examples, but every layer: streaming, size cap, signature, validation, enqueue).
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.server import make_app
from bot.settings import load_settings
from bot.webhook import ParsedDelivery, WebhookError, parse_delivery, sign
from tests.conftest import WEBHOOK_SECRET, comment_payload, issue_payload, load_webhook, settings_env

SECRETS = ("old-secret", WEBHOOK_SECRET)
CAP = 64 * 1024
EVENTS = [
    "issues",
    "issue_comment",
    "installation",
    "installation_repositories",
    "ping",
    "check_run",
    "push",
    "",
    " ",
    "ISSUES",
    "issues\t",
    "x" * 300,
]

_issue = issue_payload(body="/usr/bin/ld: cannot find -lssl")
_comment = comment_payload(
    _issue, {"id": 5, "body": "/linker why", "user": {"login": "maintainer", "type": "User"}}
)
PAIRS: list[tuple[str, dict[str, Any]]] = [
    ("issues", _issue),
    ("issue_comment", _comment),
    ("installation", load_webhook("installation.created.1")),
    ("installation_repositories", load_webhook("installation_repositories.added.1")),
    ("ping", load_webhook("ping.none.1")),
]
BASES: list[dict[str, Any]] = [base for _, base in PAIRS] + [{}]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):
            out += _paths(child, (*prefix, index))
    return out


@st.composite
def mutated_payloads(draw: st.DrawFn, base: Any = None, most: int = 4) -> Any:
    """A real payload with a few values replaced, keys dropped, or the whole thing replaced."""
    base = copy.deepcopy(draw(st.sampled_from(BASES)) if base is None else base)
    if most > 2 and draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    paths = _paths(base)
    for _ in range(draw(st.integers(0, most))):
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = base
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(json_values)
        paths = _paths(base)
    for key in ("action", "installation", "issue", "sender"):
        if most > 2 and draw(st.integers(0, 5)) == 0 and isinstance(base, dict):
            base[key] = draw(json_values)
    return base


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.binary(max_size=300))
    if kind == 1:
        return draw(st.text(max_size=300)).encode("utf-8", "surrogatepass")
    if kind == 2:
        depth = draw(st.integers(1, 50_000))
        return b"[" * depth + b"]" * draw(st.integers(0, depth))
    text = json.dumps(draw(mutated_payloads()), ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[dict[str, str], bytes]:
    if draw(st.booleans()):
        # Coherent: GitHub's own headers and event, a real payload with at most two values changed.
        event_name, base = draw(st.sampled_from(PAIRS))
        payload = draw(mutated_payloads(base, most=2))
        body = json.dumps(payload, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
        return {
            "X-GitHub-Event": event_name,
            "X-GitHub-Delivery": str(draw(st.uuids())),
            "X-Hub-Signature-256": sign(body, draw(st.sampled_from(SECRETS))),
        }, body
    body = draw(bodies())
    headers: dict[str, str] = {}
    signature = draw(st.integers(0, 5))
    if signature <= 3:
        headers["X-Hub-Signature-256"] = sign(body, draw(st.sampled_from(SECRETS)))
    elif signature == 4:
        headers["X-Hub-Signature-256"] = draw(header_text)
    if draw(st.integers(0, 8)):
        headers["X-GitHub-Event"] = draw(st.sampled_from(EVENTS) | header_text)
    if draw(st.integers(0, 8)):
        headers["X-GitHub-Delivery"] = draw(st.uuids().map(str) | header_text | st.just("d" * 250))
    for name in draw(
        st.lists(st.sampled_from(["Content-Type", "X-GitHub-Hook-ID", "User-Agent", "X-Other"]), max_size=3)
    ):
        headers[name] = draw(header_text)
    return headers, body


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries())
def test_parser_accepts_or_refuses_with_400_or_401_only(delivery: tuple[dict[str, str], bytes]) -> None:
    headers, body = delivery
    try:
        parsed = parse_delivery(headers, body, SECRETS)
    except WebhookError as exc:
        event(f"refused {exc.status}")
        assert exc.status in (400, 401)
        assert len(exc.message) < 200
        return
    assert isinstance(parsed, ParsedDelivery)
    event(parsed.verdict)
    if parsed.verdict == "enqueue":
        delivery_ = parsed.delivery
        assert delivery_ is not None and delivery_.payload == body
        assert delivery_.installation_id is None or 0 < delivery_.installation_id < 2**63
        data = json.loads(body)
        assert isinstance(data, dict) and isinstance(data.get("action"), str)
        if parsed.event in ("issues", "issue_comment"):
            # What the handlers will index without checking again.
            assert isinstance(data["issue"], dict) and isinstance(data["issue"]["number"], int)
            assert isinstance(data["repository"]["full_name"], str)
            assert data.get("sender") is None or isinstance(data["sender"], dict)
            assert delivery_.issue_key is not None and delivery_.issue_key.count("#") >= 1


def test_an_unsigned_delivery_is_401_whatever_else_is_wrong() -> None:
    for body in (b"", b"{", json.dumps(_issue).encode(), b"[" * 100_000):
        with pytest.raises(WebhookError) as info:
            parse_delivery({"X-GitHub-Event": "issues"}, body, SECRETS)
        assert info.value.status == 401


@pytest.fixture
async def client(private_key: str, tmp_path: Path, sqlite_store: Any) -> AsyncIterator[TestClient[Any, Any]]:
    settings_ = load_settings(settings_env(private_key, tmp_path, MAX_BODY_BYTES=str(CAP)))
    async with TestClient(TestServer(make_app(settings_, store=sqlite_store))) as c:
        yield c


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(delivery=deliveries(), padding=st.sampled_from([0, 0, 0, CAP + 1]))
async def test_server_answers_only_200_202_400_401_413(
    client: TestClient[Any, Any], delivery: tuple[dict[str, str], bytes], padding: int
) -> None:
    headers, body = delivery
    if padding:
        body += b" " * padding
        headers = dict(headers, **{"X-Hub-Signature-256": sign(body, WEBHOOK_SECRET)})
    resp = await client.post("/webhook", data=body, headers=headers)
    text = await resp.text()
    event(str(resp.status))
    assert resp.status in (200, 202, 400, 401, 413), (resp.status, text)
    assert "Traceback" not in text
    assert set(json.loads(text)) <= {"message", "outcome"}
    if padding:
        assert resp.status == 413
    assert (await client.get("/healthz")).status == 200
