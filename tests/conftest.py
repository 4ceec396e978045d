"""Shared fixtures: the fake GitHub server, an App key, webhook payloads built from real examples."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator, Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.fakegithub import FakeGitHub, generate_private_key

FIXTURES = Path(__file__).with_name("fixtures")
WEBHOOKS = FIXTURES / "webhooks"
WEBHOOK_SECRET = "It's a Secret to Everybody"
INSTALLATION_ID = 77
REPO = "octo-org/hello-linker"


@cache
def app_private_key() -> str:
    """One RSA key per test session (generating one takes a while)."""
    return generate_private_key()


class Clock:
    """A settable clock shared by the fake GitHub and the client under test."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@pytest.fixture
def private_key() -> str:
    """The App's private key (PEM)."""
    return app_private_key()


@pytest.fixture
async def fake_github(private_key: str) -> AsyncIterator[FakeGitHub]:
    """A running fake GitHub with one installed repository; fails the test on any API violation."""
    fake = FakeGitHub(private_key=private_key)
    await fake.start()
    fake.add_repo(REPO, installation_id=INSTALLATION_ID)
    yield fake
    await fake.close()
    assert fake.violations == [], "requests that GitHub's REST description does not allow"


def load_webhook(name: str) -> dict[str, Any]:
    """A copy of a real example payload from tests/fixtures/webhooks."""
    data: dict[str, Any] = json.loads((WEBHOOKS / f"{name}.json").read_text(encoding="utf-8"))
    return copy.deepcopy(data)


def issue_payload(
    action: str = "opened",
    *,
    number: int = 1,
    title: str = "Build fails",
    body: str | None = "",
    user: str = "reporter",
    user_type: str = "User",
    repo: str = REPO,
    installation: bool = True,
    pull_request: bool = False,
) -> dict[str, Any]:
    """An `issues` payload made from the real issues.opened example, aimed at the fake's repository."""
    data = load_webhook("issues.opened.1")
    data["action"] = action
    owner, name = repo.split("/")
    data["repository"]["full_name"] = repo
    data["repository"]["name"] = name
    data["repository"]["owner"]["login"] = owner
    issue = data["issue"]
    issue["number"] = number
    issue["title"] = title
    issue["body"] = body
    issue["user"]["login"] = user
    issue["user"]["type"] = "User"
    issue["labels"] = []
    issue.pop("pull_request", None)
    if pull_request:
        issue["pull_request"] = {"url": f"https://api.github.com/repos/{repo}/pulls/{number}"}
    data["sender"]["login"] = user
    data["sender"]["type"] = user_type
    if installation:
        data["installation"] = {"id": INSTALLATION_ID, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzc="}
    else:
        data.pop("installation", None)
    return data


def comment_payload(
    issue: dict[str, Any],
    comment: dict[str, Any],
    *,
    action: str = "created",
    sender_type: str = "User",
) -> dict[str, Any]:
    """An `issue_comment` payload from the real example, carrying an issue payload's issue and a comment."""
    data = load_webhook("issue_comment.created.1")
    data["action"] = action
    data["issue"] = copy.deepcopy(issue["issue"])
    data["repository"] = copy.deepcopy(issue["repository"])
    data["installation"] = copy.deepcopy(issue["installation"])
    base = data["comment"]
    base.update(
        {k: v for k, v in comment.items() if k in ("id", "node_id", "body", "created_at", "updated_at")}
    )
    base["user"] = dict(base["user"], login=comment["user"]["login"], type=comment["user"]["type"])
    data["sender"] = dict(data["sender"], login=comment["user"]["login"], type=sender_type)
    return data


def delivery_headers(
    body: bytes, event: str, *, secret: str = WEBHOOK_SECRET, delivery_id: str = ""
) -> dict[str, str]:
    """The headers GitHub sends with a delivery, signed with the secret."""
    from bot.webhook import sign

    return {
        "User-Agent": "GitHub-Hookshot/044aadd",
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "292430182",
        "X-GitHub-Hook-Installation-Target-ID": "4242",
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-Hub-Signature-256": sign(body, secret),
    }


@pytest.fixture
def clock() -> Clock:
    """A settable clock."""
    return Clock()


@pytest.fixture
def make_headers() -> Callable[..., dict[str, str]]:
    """delivery_headers as a fixture."""
    return delivery_headers


def settings_env(private_key: str, tmp_path: Path, **overrides: str) -> dict[str, str]:
    """An environment for load_settings with a real SQLite file under tmp_path."""
    env = {
        "GITHUB_APP_ID": "4242",
        "GITHUB_PRIVATE_KEY": private_key,
        "GITHUB_WEBHOOK_SECRET": f"old-secret,{WEBHOOK_SECRET}",
        "DATABASE_URL": f"sqlite:///{tmp_path}/linker-triage.sqlite3",
        "KNOWLEDGE_DIR": str(Path(__file__).resolve().parent.parent / "knowledge"),
        "WORKERS": "2",
    }
    if not Path(env["KNOWLEDGE_DIR"]).is_dir():
        env["KNOWLEDGE_DIR"] = str(tmp_path)
    env.update(overrides)
    return env


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Any]:
    """The real SQLite store on a temporary file."""
    from bot.store import open_store

    store = open_store(f"sqlite:///{tmp_path}/linker-triage.sqlite3")
    await store.open()
    yield store
    await store.close()
