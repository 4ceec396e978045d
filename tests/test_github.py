"""The GitHub App client against the fake GitHub: JWT, token cache and renewal, error translation."""

from __future__ import annotations

import http
from collections.abc import AsyncIterator

import aiohttp
import gidgethub
import jwt
import pytest

from bot.errors import PermanentFailure, RetryLater
from bot.github import GitHubApp, GitHubPermanentError, translate_http_error
from tests.conftest import INSTALLATION_ID, REPO, Clock
from tests.fakegithub import FakeGitHub

ISSUE_COMMENTS = "/repos/{owner}/{repo}/issues/{issue_number}/comments"
OWNER, NAME = REPO.split("/")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def app(session: aiohttp.ClientSession, fake_github: FakeGitHub, private_key: str) -> GitHubApp:
    return GitHubApp(
        session, app_id=fake_github.app_id, private_key=private_key, base_url=fake_github.base_url
    )


def comments_url(number: int = 1) -> dict[str, object]:
    return {"owner": OWNER, "repo": NAME, "issue_number": number}


def test_jwt_claims(private_key: str, fake_github: FakeGitHub) -> None:
    clock = Clock()
    app = GitHubApp(
        None,  # type: ignore[arg-type]  # no request is made
        app_id=4242,
        private_key=private_key,
        base_url="http://x",
        clock=clock,
    )
    token = app.make_jwt()
    claims = jwt.decode(
        token,
        fake_github.public_key,
        algorithms=["RS256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {"iat": int(clock.now) - 60, "exp": int(clock.now) + 540, "iss": "4242"}
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert private_key not in repr(app)


async def test_bot_login_is_fetched_once_with_a_valid_jwt(app: GitHubApp, fake_github: FakeGitHub) -> None:
    assert await app.bot_login() == "linker-triage[bot]"
    assert await app.bot_login() == "linker-triage[bot]"
    assert [r.path for r in fake_github.requests] == ["/app"]
    assert fake_github.auth_failures == []


async def test_wrong_key_is_refused_by_the_fake(
    session: aiohttp.ClientSession, fake_github: FakeGitHub
) -> None:
    from tests.fakegithub import generate_private_key

    other = GitHubApp(
        session, app_id=fake_github.app_id, private_key=generate_private_key(), base_url=fake_github.base_url
    )
    with pytest.raises(RetryLater):  # 401: treated as transient, the token is dropped
        await other.bot_login()
    assert fake_github.auth_failures and "JWT rejected" in fake_github.auth_failures[0]


async def test_installation_token_is_cached(app: GitHubApp, fake_github: FakeGitHub) -> None:
    fake_github.add_issue(REPO, 1)
    gh = app.installation(INSTALLATION_ID)
    for _ in range(3):
        assert await gh.getall(ISSUE_COMMENTS, comments_url()) == []
    assert app.tokens_issued == 1
    token_requests = [r for r in fake_github.requests if r.path.endswith("/access_tokens")]
    assert len(token_requests) == 1
    assert token_requests[0].headers["Authorization"].lower().startswith("bearer ")
    assert fake_github.auth_failures == []


async def test_installation_token_is_renewed_before_it_expires(
    session: aiohttp.ClientSession, private_key: str, clock: Clock
) -> None:
    fake = FakeGitHub(private_key=private_key, clock=clock, token_ttl=3600)
    await fake.start()
    try:
        fake.add_repo(REPO, installation_id=INSTALLATION_ID)
        fake.add_issue(REPO, 1)
        app = GitHubApp(
            session, app_id=fake.app_id, private_key=private_key, base_url=fake.base_url, clock=clock
        )
        gh = app.installation(INSTALLATION_ID)
        await gh.getall(ISSUE_COMMENTS, comments_url())
        clock.advance(3600 - 301)  # more than five minutes left: keep it
        await gh.getall(ISSUE_COMMENTS, comments_url())
        assert app.tokens_issued == 1
        clock.advance(2)  # less than five minutes left: renew
        await gh.getall(ISSUE_COMMENTS, comments_url())
        assert app.tokens_issued == 2
        clock.advance(3600 - 200)  # the old token is dead at the fake; the client never used it
        await gh.getall(ISSUE_COMMENTS, comments_url())
        assert app.tokens_issued == 3
        assert fake.auth_failures == []
        assert fake.violations == []
    finally:
        await fake.close()


async def test_pagination_follows_link_headers(app: GitHubApp, fake_github: FakeGitHub) -> None:
    fake_github.add_issue(REPO, 1)
    for i in range(250):
        fake_github.add_comment(REPO, 1, f"comment {i}")
    gh = app.installation(INSTALLATION_ID)
    comments = await gh.getall(ISSUE_COMMENTS + "{?per_page}", dict(comments_url(), per_page=100))
    assert [c["body"] for c in comments] == [f"comment {i}" for i in range(250)]
    pages = [r for r in fake_github.requests if r.path.endswith("/comments")]
    assert len(pages) == 3


async def test_write_and_read_back(app: GitHubApp, fake_github: FakeGitHub) -> None:
    fake_github.add_issue(REPO, 1)
    gh = app.installation(INSTALLATION_ID)
    created = await gh.post(ISSUE_COMMENTS, comments_url(), data={"body": "hello"})
    assert created["user"]["login"] == "linker-triage[bot]"
    await gh.patch(
        "/repos/{owner}/{repo}/issues/comments/{comment_id}",
        {"owner": OWNER, "repo": NAME, "comment_id": created["id"]},
        data={"body": "bye"},
    )
    assert fake_github.bot_comments(REPO, 1)[0]["body"] == "bye"


@pytest.mark.parametrize(
    ("fault", "options", "expected", "delay"),
    [
        ("status", {"status": 500}, RetryLater, None),
        ("status", {"status": 502}, RetryLater, None),
        ("rate_limit", {"retry_after": 17}, RetryLater, 17.0),
        ("secondary_rate_limit", {"retry_after": 30}, RetryLater, 30.0),
        ("primary_rate_limit", {"retry_after": 120}, RetryLater, "reset"),
        ("status", {"status": 404}, PermanentFailure, None),
        ("status", {"status": 410}, PermanentFailure, None),
        ("status", {"status": 403}, PermanentFailure, None),
        ("reset", {}, RetryLater, None),
    ],
)
async def test_failures_are_translated(
    app: GitHubApp,
    fake_github: FakeGitHub,
    fault: str,
    options: dict[str, float],
    expected: type[Exception],
    delay: object,
) -> None:
    fake_github.add_issue(REPO, 1)
    gh = app.installation(INSTALLATION_ID)
    await gh.getall(ISSUE_COMMENTS, comments_url())  # token first, so the fault hits the API call
    fake_github.add_fault(fault, path=r"/comments$", **options)
    with pytest.raises(expected) as info:
        await gh.getall(ISSUE_COMMENTS, comments_url())
    if isinstance(info.value, RetryLater):
        if delay == "reset":
            assert info.value.delay_seconds is not None and 100 <= info.value.delay_seconds <= 121
        else:
            assert info.value.delay_seconds == delay
    else:
        assert isinstance(info.value, GitHubPermanentError)


async def test_timeout_is_transient(fake_github: FakeGitHub, private_key: str) -> None:
    fake_github.add_issue(REPO, 1)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as session:
        app = GitHubApp(
            session, app_id=fake_github.app_id, private_key=private_key, base_url=fake_github.base_url
        )
        fake_github.add_fault("latency", latency=1.0, path="/comments")
        with pytest.raises(RetryLater):
            await app.installation(INSTALLATION_ID).getall(ISSUE_COMMENTS, comments_url())


async def test_minimize_comment_over_graphql(app: GitHubApp, fake_github: FakeGitHub) -> None:
    fake_github.add_issue(REPO, 1)
    comment = fake_github.add_comment(REPO, 1, "old", user=fake_github.bot_login, user_type="Bot")
    data = await app.installation(INSTALLATION_ID).graphql(
        "mutation($id: ID!) { minimizeComment(input: {subjectId: $id, classifier: OUTDATED}) "
        "{ minimizedComment { isMinimized } } }",
        id=comment["node_id"],
    )
    assert data["minimizeComment"]["minimizedComment"]["isMinimized"] is True
    assert fake_github.comments[comment["id"]]["minimized"] == {"reason": "outdated"}


def test_translate_primary_rate_limit_on_429() -> None:
    exc = gidgethub.BadRequest(
        http.HTTPStatus(429), "limit", headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1060"}
    )
    result = translate_http_error(exc, now=1000.0)
    assert isinstance(result, RetryLater) and result.delay_seconds == 60.0


def test_translate_secondary_limit_without_retry_after() -> None:
    exc = gidgethub.BadRequest(http.HTTPStatus(403), "You have exceeded a secondary rate limit")
    result = translate_http_error(exc, now=0.0)
    assert isinstance(result, RetryLater) and result.delay_seconds == 60.0


async def test_fake_serves_the_other_endpoints(app: GitHubApp, fake_github: FakeGitHub) -> None:
    repo = fake_github.repos[REPO]
    repo.permissions["maintainer"] = "write"
    repo.contents[".github/linker-triage.yml"] = b"labels: false\n"
    fake_github.add_issue(REPO, 1, labels=["bug"])
    comment = fake_github.add_comment(REPO, 1, "hi")
    gh = app.installation(INSTALLATION_ID)
    where = {"owner": OWNER, "repo": NAME}
    perm = await gh.getitem(
        "/repos/{owner}/{repo}/collaborators/{username}/permission", dict(where, username="maintainer")
    )
    assert perm["permission"] == "write"
    with pytest.raises(GitHubPermanentError) as info:
        await gh.getitem(
            "/repos/{owner}/{repo}/collaborators/{username}/permission", dict(where, username="nobody")
        )
    assert info.value.status == 404
    contents = await gh.getitem(
        "/repos/{owner}/{repo}/contents/{+path}", dict(where, path=".github/linker-triage.yml")
    )
    assert contents["encoding"] == "base64"
    await gh.post(
        "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
        dict(where, comment_id=comment["id"]),
        data={"content": "eyes"},
    )
    assert fake_github.comments[comment["id"]]["reactions_list"][0]["content"] == "eyes"
    await gh.post(
        "/repos/{owner}/{repo}/issues/{issue_number}/labels",
        dict(where, issue_number=1),
        data={"labels": ["x"]},
    )
    labels = await gh.getall(
        "/repos/{owner}/{repo}/issues/{issue_number}/labels", dict(where, issue_number=1)
    )
    assert [label["name"] for label in labels] == ["bug", "x"]
    issue = await gh.getitem("/repos/{owner}/{repo}/issues/{issue_number}", dict(where, issue_number=1))
    assert issue["number"] == 1 and issue["comments"] == 1
    assert fake_github.violations == []


async def test_fake_reports_violations(app: GitHubApp, fake_github: FakeGitHub) -> None:
    fake_github.add_issue(REPO, 1)
    gh = app.installation(INSTALLATION_ID)
    where = {"owner": OWNER, "repo": NAME, "issue_number": 1}
    with pytest.raises(GitHubPermanentError):  # 422: the body does not match the schema
        await gh.post(ISSUE_COMMENTS, where, data={"text": "wrong field"})
    with pytest.raises(GitHubPermanentError):  # 404: no such endpoint
        await gh.getitem("/repos/{owner}/{repo}/issue/{issue_number}", where)
    with pytest.raises(GitHubPermanentError):  # 404: real, but not emulated
        await gh.getitem("/repos/{owner}/{repo}/pulls/{issue_number}", where)
    with pytest.raises(GitHubPermanentError):  # 422: undocumented query parameter
        await gh.getitem(ISSUE_COMMENTS + "{?sort}", dict(where, sort="created"))
    assert len(fake_github.violations) == 4
    assert "'body' is a required property" in fake_github.violations[0]
    assert "no such GitHub endpoint" in fake_github.violations[1]
    assert "does not emulate" in fake_github.violations[2]
    assert "query parameter 'sort'" in fake_github.violations[3]
    fake_github.violations.clear()


async def test_fake_faults_are_deterministic(private_key: str) -> None:
    async def run() -> list[int]:
        fake = FakeGitHub(private_key=private_key, seed=7)
        fake.add_fault("status", status=502, probability=0.5)
        await fake.start()
        try:
            async with aiohttp.ClientSession() as s:
                return [
                    (await s.get(f"{fake.base_url}/rate_limit", headers={"User-Agent": "t"})).status
                    for _ in range(20)
                ]
        finally:
            await fake.close()

    first = await run()
    assert first == await run()
    assert set(first) == {200, 502}
