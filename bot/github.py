"""GitHub App authentication and API access: JWT, cached installation tokens, error translation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import gidgethub
import gidgethub.aiohttp
import jwt

from bot.errors import PermanentFailure, RetryLater

USER_AGENT = "linker-triage"
TOKEN_RENEW_MARGIN = 300.0  # renew an installation token this many seconds before it expires
DEFAULT_SECONDARY_DELAY = 60.0  # GitHub's advice when a secondary limit comes without Retry-After
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)

Clock = Callable[[], float]


class GitHubPermanentError(PermanentFailure):
    """A GitHub answer that retrying cannot change (404, 410, 422, 403 without rate limiting)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def translate_http_error(exc: gidgethub.HTTPException, now: float) -> RetryLater | PermanentFailure:
    """Map a gidgethub HTTP error to what the queue should do: retry later (with delay) or give up."""
    status = int(exc.status_code)
    headers = {k.lower(): v for k, v in exc.headers.items()}
    message = str(exc)
    what = f"GitHub answered {status}: {message}"[:300]
    if status >= 500:
        return RetryLater(what)
    if status in (403, 429):
        if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
            reset = _number(headers["x-ratelimit-reset"])
            if reset is not None:
                return RetryLater(f"primary rate limit: {what}", max(1.0, reset - now))
        retry_after = _number(headers.get("retry-after"))
        if retry_after is not None:
            return RetryLater(f"rate limited: {what}", max(0.0, retry_after))
        if status == 429 or "secondary rate limit" in message.lower():
            return RetryLater(f"secondary rate limit: {what}", DEFAULT_SECONDARY_DELAY)
    if status == 401:
        return RetryLater(f"credentials refused, will renew the token: {what}")
    return GitHubPermanentError(what, status)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def make_session() -> aiohttp.ClientSession:
    """The one HTTP client session a process shares for all GitHub calls."""
    return aiohttp.ClientSession(timeout=REQUEST_TIMEOUT)


class _TransportAPI(gidgethub.aiohttp.GitHubAPI):
    """gidgethub over aiohttp, turning connection failures and timeouts into RetryLater."""

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, Mapping[str, str], bytes]:
        try:
            return await super()._request(method, url, headers, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryLater(f"{method} {url}: {exc.__class__.__name__}: {exc}"[:300]) from exc


@dataclass
class _Token:
    token: str
    expires_at: float


class GitHubApp:
    """The App's identity: signs JWTs, knows its login, hands out installation clients."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        app_id: int,
        private_key: str,
        base_url: str,
        clock: Clock = time.time,
        renew_margin: float = TOKEN_RENEW_MARGIN,
    ) -> None:
        self.session = session
        self._api = _TransportAPI(session, USER_AGENT, base_url=base_url.rstrip("/"))
        self.app_id = app_id
        self._private_key = private_key
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        self._renew_margin = renew_margin
        self._tokens: dict[int, _Token] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._app_info: dict[str, Any] | None = None
        self.tokens_issued = 0

    def __repr__(self) -> str:
        return f"GitHubApp(app_id={self.app_id}, base_url={self.base_url!r})"

    def make_jwt(self) -> str:
        """A fresh App JWT (RS256): issued a minute ago against clock drift, valid for nine minutes."""
        now = int(self._clock())
        claims = {"iat": now - 60, "exp": now + 9 * 60, "iss": str(self.app_id)}
        return jwt.encode(claims, self._private_key, algorithm="RS256")

    async def app_info(self) -> dict[str, Any]:
        """GET /app, fetched once per process."""
        if self._app_info is None:
            data = await self._call(self._api.getitem("/app", jwt=self.make_jwt()))
            if not isinstance(data, dict) or not isinstance(data.get("slug"), str):
                raise PermanentFailure("GET /app answered without a slug")
            self._app_info = data
        return self._app_info

    async def bot_login(self) -> str:
        """The login the App's comments carry: '<slug>[bot]'."""
        info = await self.app_info()
        return f"{info['slug']}[bot]"

    async def installation_token(self, installation_id: int) -> str:
        """A valid installation token, renewed a few minutes before it expires."""
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(installation_id)
            if cached is not None and cached.expires_at - self._renew_margin > self._clock():
                return cached.token
            data = await self._call(
                self._api.post(
                    "/app/installations/{installation_id}/access_tokens",
                    {"installation_id": installation_id},
                    data=b"",
                    jwt=self.make_jwt(),
                )
            )
            if not isinstance(data, dict) or not isinstance(data.get("token"), str):
                raise RetryLater("installation token answer without a token")
            expires = _parse_time(data.get("expires_at"), default=self._clock() + 3600)
            self._tokens[installation_id] = _Token(data["token"], expires)
            self.tokens_issued += 1
            return str(data["token"])

    def forget_installation(self, installation_id: int) -> None:
        """Drop a cached token (installation deleted or suspended, or a token GitHub refused)."""
        self._tokens.pop(installation_id, None)

    def installation(self, installation_id: int) -> InstallationClient:
        """A client acting as one installation; the token is fetched on first use."""
        return InstallationClient(self, self._api, installation_id)

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except gidgethub.HTTPException as exc:
            raise translate_http_error(exc, self._clock()) from exc


class InstallationClient:
    """REST and GraphQL calls on behalf of one installation, with GitHub errors translated."""

    def __init__(self, app: GitHubApp, api: _TransportAPI, installation_id: int) -> None:
        self.app = app
        self._api = api
        self.installation_id = installation_id

    async def _token(self) -> str:
        return await self.app.installation_token(self.installation_id)

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except gidgethub.HTTPException as exc:
            if int(exc.status_code) == 401:
                self.app.forget_installation(self.installation_id)
            raise translate_http_error(exc, self.app._clock()) from exc

    async def getitem(self, url: str, url_vars: Mapping[str, Any] | None = None) -> Any:
        """GET one resource."""
        return await self._call(self._api.getitem(url, url_vars or {}, oauth_token=await self._token()))

    async def getiter(self, url: str, url_vars: Mapping[str, Any] | None = None) -> AsyncIterator[Any]:
        """GET every item of a paginated list, following Link headers."""
        token = await self._token()
        iterator = self._api.getiter(url, url_vars or {}, oauth_token=token).__aiter__()
        while True:
            try:
                item = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except gidgethub.HTTPException as exc:
                if int(exc.status_code) == 401:
                    self.app.forget_installation(self.installation_id)
                raise translate_http_error(exc, self.app._clock()) from exc
            yield item

    async def getall(self, url: str, url_vars: Mapping[str, Any] | None = None) -> list[Any]:
        """Every item of a paginated list."""
        return [item async for item in self.getiter(url, url_vars)]

    async def post(self, url: str, url_vars: Mapping[str, Any] | None = None, *, data: Any) -> Any:
        """POST a JSON body."""
        return await self._call(
            self._api.post(url, url_vars or {}, data=data, oauth_token=await self._token())
        )

    async def patch(self, url: str, url_vars: Mapping[str, Any] | None = None, *, data: Any) -> Any:
        """PATCH a JSON body."""
        return await self._call(
            self._api.patch(url, url_vars or {}, data=data, oauth_token=await self._token())
        )

    async def delete(self, url: str, url_vars: Mapping[str, Any] | None = None) -> None:
        """DELETE a resource."""
        await self._call(self._api.delete(url, url_vars or {}, oauth_token=await self._token()))

    async def graphql(self, query: str, **variables: Any) -> Any:
        """Run a GraphQL query against this server's /graphql endpoint."""
        # gidgethub's graphql() only takes the token from the instance, so use a private one.
        api = _TransportAPI(self.app.session, USER_AGENT, oauth_token=await self._token())
        try:
            return await api.graphql(query, endpoint=_graphql_endpoint(self.app.base_url), **variables)
        except gidgethub.HTTPException as exc:
            raise translate_http_error(exc, self.app._clock()) from exc
        except gidgethub.QueryError as exc:
            raise GitHubPermanentError(f"GraphQL query failed: {exc}"[:300], 200) from exc
        except gidgethub.BadGraphQLRequest as exc:
            status = int(exc.status_code)
            if status == 401:
                self.app.forget_installation(self.installation_id)
            if status in (401, 403, 429):
                raise RetryLater(f"GraphQL answered {status}") from exc
            raise GitHubPermanentError(f"GraphQL answered {status}", status) from exc
        except gidgethub.GraphQLException as exc:
            raise RetryLater(f"GraphQL failed: {exc}"[:300]) from exc


def _graphql_endpoint(base_url: str) -> str:
    # GitHub Enterprise Server serves REST under /api/v3 and GraphQL at /api/graphql.
    if base_url.endswith("/api/v3"):
        return base_url[: -len("/v3")] + "/graphql"
    return base_url + "/graphql"


def _parse_time(value: Any, *, default: float) -> float:
    if not isinstance(value, str):
        return default
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default
