"""POST /webhook through the real aiohttp app and SQLite store: 401/400/413/200/202, probes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.server import make_app
from bot.settings import load_settings
from bot.webhook import WebhookError, _parse_json, sign, signature_matches
from tests.conftest import (
    WEBHOOK_SECRET,
    comment_payload,
    delivery_headers,
    issue_payload,
    load_webhook,
    settings_env,
)


@pytest.fixture
async def client(private_key: str, tmp_path: Path, sqlite_store: Any) -> AsyncIterator[TestClient[Any, Any]]:
    settings = load_settings(settings_env(private_key, tmp_path, MAX_BODY_BYTES="65536"))
    app = make_app(settings, store=sqlite_store)
    async with TestClient(TestServer(app)) as c:
        yield c


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


async def post(client: TestClient[Any, Any], body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    resp = await client.post("/webhook", data=body, headers=headers)
    return resp.status, await resp.json()


async def jobs(store: Any) -> list[Any]:
    return list(await store.list_jobs())


async def test_issue_opened_is_stored_then_accepted(client: TestClient[Any, Any], sqlite_store: Any) -> None:
    body = encode(issue_payload(number=7, body="hello"))
    headers = delivery_headers(body, "issues", delivery_id="d-1")
    status, data = await post(client, body, headers)
    assert (status, data["outcome"]) == (202, "new")
    [job] = await jobs(sqlite_store)
    assert (job.delivery_id, job.event, job.action, job.issue_key) == (
        "d-1",
        "issues",
        "opened",
        "octo-org/hello-linker#7",
    )
    status, data = await post(client, body, headers)  # GitHub's "Redeliver"
    assert (status, data["outcome"]) == (202, "duplicate")
    assert len(await jobs(sqlite_store)) == 1


async def test_second_secret_of_a_rotation_list_works(client: TestClient[Any, Any]) -> None:
    body = encode(issue_payload())
    status, _ = await post(client, body, delivery_headers(body, "issues", secret="old-secret"))
    assert status == 202


@pytest.mark.parametrize("signature", [None, "", "sha256=", "sha1=abc", "sha256=" + "0" * 64])
async def test_bad_or_missing_signature_is_401_and_nothing_stored(
    client: TestClient[Any, Any], sqlite_store: Any, signature: str | None
) -> None:
    body = encode(issue_payload())
    headers = delivery_headers(body, "issues")
    if signature is None:
        del headers["X-Hub-Signature-256"]
    else:
        headers["X-Hub-Signature-256"] = signature
    status, data = await post(client, body, headers)
    assert status == 401
    assert "Traceback" not in json.dumps(data)
    assert await jobs(sqlite_store) == []


async def test_signature_of_other_secret_is_401(client: TestClient[Any, Any], sqlite_store: Any) -> None:
    body = encode(issue_payload())
    status, _ = await post(client, body, delivery_headers(body, "issues", secret="wrong"))
    assert status == 401
    assert await jobs(sqlite_store) == []


async def test_tampered_body_is_401(client: TestClient[Any, Any]) -> None:
    body = encode(issue_payload())
    headers = delivery_headers(body, "issues")
    status, _ = await post(client, body.replace(b"reporter", b"attacker"), headers)
    assert status == 401


@pytest.mark.parametrize(
    ("body", "event"),
    [
        (b"{not json", "issues"),
        (b"[1, 2]", "issues"),
        (b"\xff\xfe", "issues"),
        (encode({"action": 5}), "issues"),
        (encode({"issue": {}}), "issues"),  # no action
        (encode(dict(issue_payload(), issue={"number": "7"})), "issues"),
        (encode(dict(issue_payload(), repository={"full_name": 3})), "issues"),
        (encode({k: v for k, v in issue_payload().items() if k != "issue"}), "issues"),
        (encode(dict(issue_payload(), installation={"id": "77"})), "issues"),
        (
            encode(dict(issue_payload(), action="created", comment={"id": 1, "body": 5, "user": {}})),
            "issue_comment",
        ),
    ],
)
async def test_malformed_is_400(
    client: TestClient[Any, Any], sqlite_store: Any, body: bytes, event: str
) -> None:
    status, data = await post(client, body, delivery_headers(body, event))
    assert status == 400, data
    assert await jobs(sqlite_store) == []


@pytest.mark.parametrize("header", ["X-GitHub-Event", "X-GitHub-Delivery"])
async def test_missing_event_headers_are_400(client: TestClient[Any, Any], header: str) -> None:
    body = encode(issue_payload())
    headers = delivery_headers(body, "issues")
    del headers[header]
    status, _ = await post(client, body, headers)
    assert status == 400


async def test_too_large_is_413(client: TestClient[Any, Any], sqlite_store: Any) -> None:
    payload = issue_payload(body="x" * 70_000)
    body = encode(payload)
    status, _ = await post(client, body, delivery_headers(body, "issues"))
    assert status == 413
    assert await jobs(sqlite_store) == []


async def test_too_large_chunked_body_is_413_without_reading_it_all(client: TestClient[Any, Any]) -> None:
    sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):  # 64 MB if the server kept reading
            sent += 65536
            yield b"x" * 65536

    headers = delivery_headers(b"", "issues")
    try:
        resp = await client.post("/webhook", data=stream(), headers=headers)
        assert resp.status == 413
    except Exception:  # the server may close the connection while we are still sending
        pass
    assert sent < 1000 * 65536


@pytest.mark.parametrize("name", ["ping.none.1", "ping.none.d1"])
async def test_ping_is_200(client: TestClient[Any, Any], name: str) -> None:
    body = encode(load_webhook(name))
    status, data = await post(client, body, delivery_headers(body, "ping"))
    assert (status, data["message"]) == (200, "pong")


@pytest.mark.parametrize(
    ("name", "event"),
    [("issues.labeled.1", "issues"), ("issue_comment.created.1", "issue_comment")],
)
async def test_ignored_or_not_an_app_delivery_is_200(
    client: TestClient[Any, Any], sqlite_store: Any, name: str, event: str
) -> None:
    payload = load_webhook(name)
    body = encode(payload)
    status, _ = await post(client, body, delivery_headers(body, event))
    assert status == 200
    assert await jobs(sqlite_store) == []


async def test_unknown_event_is_200(client: TestClient[Any, Any]) -> None:
    body = encode({"action": "completed", "check_run": {}})
    status, data = await post(client, body, delivery_headers(body, "check_run"))
    assert (status, data["message"]) == (200, "event ignored")


@pytest.mark.parametrize(
    ("name", "event"),
    [
        ("installation.created.1", "installation"),
        ("installation.deleted.1", "installation"),
        ("installation_repositories.added.1", "installation_repositories"),
        ("issue_comment.created.d2", "issue_comment"),  # a comment by a Bot: stored, skipped later
    ],
)
async def test_app_deliveries_are_stored(
    client: TestClient[Any, Any], sqlite_store: Any, name: str, event: str
) -> None:
    payload = load_webhook(name)
    payload.setdefault("installation", {"id": 77})
    body = encode(payload)
    status, _ = await post(client, body, delivery_headers(body, event))
    assert status == 202
    [job] = await jobs(sqlite_store)
    assert job.event == event


async def test_issue_comment_gets_issue_key(client: TestClient[Any, Any], sqlite_store: Any) -> None:
    issue = issue_payload(number=9)
    comment = {"id": 5, "body": None, "user": {"login": "reporter", "type": "User"}}
    body = encode(comment_payload(issue, comment))
    status, _ = await post(client, body, delivery_headers(body, "issue_comment"))
    assert status == 202
    [job] = await jobs(sqlite_store)
    assert job.issue_key == "octo-org/hello-linker#9"


async def test_probes(client: TestClient[Any, Any], sqlite_store: Any) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    await sqlite_store.close()
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/healthz")).status == 200
    await sqlite_store.open()


async def test_store_failure_is_503_not_a_traceback(client: TestClient[Any, Any], sqlite_store: Any) -> None:
    await sqlite_store.close()
    body = encode(issue_payload())
    resp = await client.post("/webhook", data=body, headers=delivery_headers(body, "issues"))
    assert resp.status == 503
    assert "Traceback" not in await resp.text()
    await sqlite_store.open()


def test_signature_helpers() -> None:
    body = b'{"zen": "Keep it logically awesome."}'
    assert signature_matches(body, sign(body, WEBHOOK_SECRET), ["other", WEBHOOK_SECRET])
    assert not signature_matches(body, sign(body, WEBHOOK_SECRET), ["other"])
    assert not signature_matches(
        body, sign(body, WEBHOOK_SECRET).upper().replace("SHA256", "md5"), [WEBHOOK_SECRET]
    )


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b'{"a": [1, "x"]}', {"a": [1, "x"]}),
        (b'{"body": "\\ud800 lone surrogate"}', {"body": "\ud800 lone surrogate"}),  # only json takes it
        (b'{"x": Infinity}', {"x": float("inf")}),
    ],
)
def test_parse_json_accepts_what_json_accepts(body: bytes, value: Any) -> None:
    assert _parse_json(body) == value


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 100_000, "body is nested too deeply"),
        (b"{not json", "body is not valid JSON"),
        (b"\xff\xfe{}", "body is not valid JSON"),
        (b"", "body is not valid JSON"),
    ],
)
def test_parse_json_refuses_with_a_reason(body: bytes, message: str) -> None:
    with pytest.raises(WebhookError) as caught:
        _parse_json(body)
    assert (caught.value.status, caught.value.message) == (400, message)
