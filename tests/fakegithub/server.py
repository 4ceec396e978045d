"""A fake GitHub API on a real local port: App JWT and token auth, issues, comments, labels, faults."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .spec import RestSpec, Route, load_spec

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
FAULT_KINDS = frozenset(
    {
        "status",
        "rate_limit",
        "secondary_rate_limit",
        "primary_rate_limit",
        "apply_then_fail",
        "reset",
        "latency",
    }
)


def generate_private_key() -> str:
    """A fresh RSA key in PEM form, for an App under test."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def public_key_of(private_pem: str) -> str:
    """The PEM public key matching a private key."""
    key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    status: int = 0  # the answer given (0 when the connection was reset)
    template: str | None = None

    @property
    def is_write(self) -> bool:
        """A state-changing request other than asking for an installation token."""
        return self.method in WRITE_METHODS and not self.path.startswith("/app/")


@dataclass
class Fault:
    """A fault injection rule; the first rule that matches a request (and wins its dice roll) applies.

    kind: status (answer `status`, default 500), rate_limit (429 + Retry-After),
    secondary_rate_limit (403 + secondary-limit message, Retry-After when `retry_after` is set),
    primary_rate_limit (403 + X-RateLimit-Remaining: 0 and X-RateLimit-Reset = now + `retry_after`),
    apply_then_fail (do the request, then answer `status`, default 502), reset (drop the connection),
    latency (sleep `latency` seconds, then carry on).
    """

    kind: str
    status: int | None = None
    probability: float = 1.0
    times: int | None = None  # apply at most this many times; None: forever
    method: str | None = None
    path: str | None = None  # regex searched in the request path
    retry_after: float = 1.0
    latency: float = 0.0
    hits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(FAULT_KINDS)}")

    def applies(self, method: str, path: str, rng: random.Random) -> bool:
        """Whether this rule fires for one request (consumes a dice roll only when it could)."""
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path is not None and not re.search(self.path, path):
            return False
        if self.probability < 1.0 and rng.random() >= self.probability:
            return False
        self.hits += 1
        return True


@dataclass
class Repo:
    """A repository the fake knows, with its issues and installation."""

    owner: str
    name: str
    installation_id: int
    repo_id: int
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    # login -> admin | maintain | write | triage | read | none
    permissions: dict[str, str] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)  # path on the default branch -> bytes

    @property
    def full_name(self) -> str:
        """owner/name."""
        return f"{self.owner}/{self.name}"


class FakeGitHub:
    """A GitHub REST API for one App, validated against GitHub's own description."""

    def __init__(
        self,
        *,
        app_id: int = 4242,
        slug: str = "linker-triage",
        private_key: str | None = None,
        token_ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
    ) -> None:
        self.app_id = app_id
        self.slug = slug
        self.private_key = private_key or generate_private_key()
        self.public_key = public_key_of(self.private_key)
        self.token_ttl = token_ttl
        self.clock = clock
        self.rng = random.Random(seed)
        self.spec: RestSpec = load_spec()
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self.auth_failures: list[str] = []
        self.faults: list[Fault] = []
        self.repos: dict[str, Repo] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self._comment_issue: dict[int, tuple[str, int]] = {}
        self.tokens: dict[str, tuple[int, float]] = {}  # token -> (installation id, expires at)
        self._next_id = 1000
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> str:
        """Listen on 127.0.0.1 at a free port; returns the base URL."""
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- seeding and inspection ------------------------------------------------------------
    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    @property
    def bot_login(self) -> str:
        """The login of the App's bot user."""
        return f"{self.slug}[bot]"

    def add_repo(self, full_name: str, installation_id: int = 77) -> Repo:
        """Make a repository visible to an installation."""
        owner, name = full_name.split("/")
        repo = Repo(owner, name, installation_id, self._new_id())
        self.repos[full_name] = repo
        return repo

    def _user(self, login: str, user_type: str = "User") -> dict[str, Any]:
        uid = abs(hash(login)) % 10_000_000
        return {
            "login": login,
            "id": uid,
            "node_id": f"U_{uid}",
            "type": user_type,
            "site_admin": False,
            "url": f"{self.base_url}/users/{login}",
            "html_url": f"https://github.com/{login}",
        }

    def add_issue(
        self,
        full_name: str,
        number: int,
        *,
        title: str = "Build fails",
        body: str | None = "",
        user: str = "reporter",
        labels: list[str] | None = None,
        pull_request: bool = False,
    ) -> dict[str, Any]:
        """Create an issue (or a pull request seen as an issue) in a seeded repository."""
        repo = self.repos[full_name]
        now = _iso(self.clock())
        issue: dict[str, Any] = {
            "id": self._new_id(),
            "node_id": f"I_{number}",
            "number": number,
            "title": title,
            "body": body,
            "user": self._user(user),
            "labels": [self._label(name) for name in labels or []],
            "state": "open",
            "locked": False,
            "comments": 0,
            "created_at": now,
            "updated_at": now,
            "url": f"{self.base_url}/repos/{full_name}/issues/{number}",
            "html_url": f"https://github.com/{full_name}/issues/{number}",
            "repository_url": f"{self.base_url}/repos/{full_name}",
            "author_association": "NONE",
        }
        if pull_request:
            issue["pull_request"] = {"url": f"{self.base_url}/repos/{full_name}/pulls/{number}"}
        repo.issues[number] = issue
        return issue

    def _label(self, name: str) -> dict[str, Any]:
        return {"id": abs(hash(name)) % 10_000_000, "name": name, "color": "ededed", "default": False}

    def add_comment(
        self, full_name: str, number: int, body: str, *, user: str = "reporter", user_type: str = "User"
    ) -> dict[str, Any]:
        """Add a comment to an issue as someone (a person, or the App with user=fake.bot_login)."""
        cid = self._new_id()
        now = _iso(self.clock())
        comment: dict[str, Any] = {
            "id": cid,
            "node_id": f"IC_{cid}",
            "body": body,
            "user": self._user(user, user_type),
            "created_at": now,
            "updated_at": now,
            "url": f"{self.base_url}/repos/{full_name}/issues/comments/{cid}",
            "html_url": f"https://github.com/{full_name}/issues/{number}#issuecomment-{cid}",
            "issue_url": f"{self.base_url}/repos/{full_name}/issues/{number}",
            "author_association": "NONE",
            "reactions_list": [],
            "minimized": None,
        }
        if user_type == "Bot" and user == self.bot_login:
            comment["performed_via_github_app"] = {"id": self.app_id, "slug": self.slug}
        self.comments[cid] = comment
        self._comment_issue[cid] = (full_name, number)
        self.repos[full_name].issues[number]["comments"] += 1
        return comment

    def issue_comments(self, full_name: str, number: int) -> list[dict[str, Any]]:
        """The comments of one issue, oldest first."""
        return [c for cid, c in self.comments.items() if self._comment_issue[cid] == (full_name, number)]

    def bot_comments(self, full_name: str, number: int) -> list[dict[str, Any]]:
        """The App's own comments on one issue, oldest first."""
        return [c for c in self.issue_comments(full_name, number) if c["user"]["login"] == self.bot_login]

    def issue_labels(self, full_name: str, number: int) -> list[str]:
        """Label names on one issue."""
        return [lab["name"] for lab in self.repos[full_name].issues[number]["labels"]]

    def writes(self) -> list[RecordedRequest]:
        """Every state-changing request made to repositories (token requests excluded)."""
        return [r for r in self.requests if r.is_write]

    def add_fault(self, kind: str, **options: Any) -> Fault:
        """Append a fault rule (see Fault) and return it."""
        fault = Fault(kind, **options)
        self.faults.append(fault)
        return fault

    def reset_log(self) -> None:
        """Forget recorded requests (state is kept)."""
        self.requests.clear()

    # ---- request handling ------------------------------------------------------------------
    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        now = self.clock()
        base = {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "4999",
            "X-RateLimit-Reset": str(int(now) + 3600),
            "X-RateLimit-Used": "1",
            "X-RateLimit-Resource": "core",
        }
        base.update(headers or {})
        if status == 204:
            return web.Response(status=204, headers=base)
        return web.json_response(data, status=status, headers=base)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return self._json(
            {"message": message, "documentation_url": "https://docs.github.com/rest"}, status, headers
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            json=parsed,
        )
        self.requests.append(record)
        response = await self._answer(request, record, body)
        record.status = response.status if response is not None else 0
        if response is None:
            # Drop the connection without an answer.
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        return response

    async def _answer(
        self, request: web.Request, record: RecordedRequest, body: bytes
    ) -> web.Response | None:
        method, path = request.method, request.path
        if not request.headers.get("User-Agent"):
            self.violations.append(f"{method} {path}: no User-Agent header (GitHub refuses those)")

        fault: Fault | None = None
        for rule in self.faults:
            if rule.applies(method, path, self.rng):
                if rule.kind == "latency":
                    await asyncio.sleep(rule.latency)
                    continue
                fault = rule
                break

        if path == "/graphql" and method == "POST":
            route = None
        else:
            route = self.spec.match(method, path)
            if route is None:
                if self.spec.exists_anywhere(method, path):
                    self.violations.append(
                        f"{method} {path}: a real GitHub endpoint the fake does not emulate"
                    )
                else:
                    self.violations.append(f"{method} {path}: no such GitHub endpoint")
                return self._error(404, "Not Found")
            record.template = route.template
            problems = self.spec.validate(
                route, method, dict(request.query), body, request.headers.get("Content-Type", "")
            )
            if problems:
                self.violations.extend(f"{method} {path}: {p}" for p in problems)
                return self._error(422, "Validation Failed: " + "; ".join(problems))

        if fault is not None and fault.kind != "apply_then_fail":
            return self._fault_response(fault)

        if route is None:
            response = await self._graphql(request, record)
        elif route.template.startswith("/app"):
            response = self._app_route(request, route)
        elif route.template == "/rate_limit":
            response = self._rate_limit()
        else:
            response = self._repo_route(request, route, record)
        if fault is not None:  # apply_then_fail: the write happened, the answer is lost
            return self._error(fault.status or 502, "Bad Gateway")
        return response

    def _fault_response(self, fault: Fault) -> web.Response | None:
        if fault.kind == "reset":
            return None
        if fault.kind == "rate_limit":
            return self._error(
                fault.status or 429, "API rate limit exceeded", {"Retry-After": str(int(fault.retry_after))}
            )
        if fault.kind == "secondary_rate_limit":
            return self._error(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                {"Retry-After": str(int(fault.retry_after))},
            )
        if fault.kind == "primary_rate_limit":
            reset = int(self.clock() + fault.retry_after)
            return self._error(
                fault.status or 403,
                "API rate limit exceeded for installation.",
                {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
            )
        return self._error(fault.status or 500, "Server Error")

    # ---- authentication --------------------------------------------------------------------
    def _auth_fail(self, request: web.Request, why: str) -> web.Response:
        self.auth_failures.append(f"{request.method} {request.path}: {why}")
        return self._error(401, "Bad credentials")

    def _check_jwt(self, request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "App endpoints need 'Authorization: Bearer <JWT>'"
        try:
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "require": ["iat", "exp", "iss"]},
            )
        except jwt.PyJWTError as exc:
            return f"JWT rejected: {exc}"
        now = self.clock()
        if claims["iss"] != str(self.app_id):
            return f"JWT iss {claims['iss']!r} is not the app id {self.app_id} as a string"
        if not isinstance(claims["iat"], int) or not isinstance(claims["exp"], int):
            return "JWT iat/exp must be integers"
        if claims["iat"] > now + 5:
            return "JWT issued in the future"
        if claims["exp"] <= now:
            return "JWT expired"
        if claims["exp"] > now + 600 + 5 or claims["exp"] - claims["iat"] > 600:
            return "JWT expiry more than 10 minutes ahead"
        return None

    def _check_token(self, request: web.Request, repo: Repo) -> str | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("token", "bearer") or not token:
            return "repository endpoints need an installation token"
        held = self.tokens.get(token)
        if held is None:
            return "unknown token"
        installation_id, expires_at = held
        if expires_at <= self.clock():
            return "token expired"
        if installation_id != repo.installation_id:
            return f"token of installation {installation_id} used on {repo.full_name}"
        return None

    # ---- /app ------------------------------------------------------------------------------
    def _app_route(self, request: web.Request, route: Route) -> web.Response:
        problem = self._check_jwt(request)
        if problem:
            return self._auth_fail(request, problem)
        if route.template == "/app":
            return self._json(
                {
                    "id": self.app_id,
                    "slug": self.slug,
                    "node_id": f"A_{self.app_id}",
                    "name": "Linker Triage",
                    "owner": self._user("linker-org", "Organization"),
                    "description": "",
                    "external_url": "https://example.invalid",
                    "html_url": f"https://github.com/apps/{self.slug}",
                    "created_at": _iso(self.clock()),
                    "updated_at": _iso(self.clock()),
                    "permissions": {"issues": "write", "metadata": "read"},
                    "events": ["issues", "issue_comment"],
                }
            )
        installation_id = int(route.params["installation_id"])
        if installation_id not in {r.installation_id for r in self.repos.values()}:
            return self._error(404, "Not Found")
        token = f"ghs_{self.rng.getrandbits(64):016x}{len(self.tokens)}"
        expires_at = self.clock() + self.token_ttl
        self.tokens[token] = (installation_id, expires_at)
        return self._json(
            {
                "token": token,
                "expires_at": _iso(expires_at),
                "permissions": {"issues": "write", "metadata": "read"},
                "repository_selection": "selected",
            },
            201,
        )

    def _rate_limit(self) -> web.Response:
        reset = int(self.clock()) + 3600
        core = {"limit": 5000, "remaining": 4999, "reset": reset, "used": 1}
        return self._json({"resources": {"core": core}, "rate": core})

    # ---- repositories ----------------------------------------------------------------------
    def _paginate(self, request: web.Request, items: list[Any]) -> web.Response:
        per_page = min(max(int(request.query.get("per_page", "30")), 1), 100)
        page = max(int(request.query.get("page", "1")), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []

        def url(n: int) -> str:
            return f"{self.base_url}{request.path}?per_page={per_page}&page={n}"

        if page < last:
            links.append(f'<{url(page + 1)}>; rel="next"')
            links.append(f'<{url(last)}>; rel="last"')
        if page > 1:
            links.append(f'<{url(1)}>; rel="first"')
            links.append(f'<{url(page - 1)}>; rel="prev"')
        return self._json(chunk, headers={"Link": ", ".join(links)} if links else None)

    def _content_item(self, repo: Repo, path: str, kind: str) -> dict[str, Any]:
        content = repo.contents.get(path, b"")
        sha = hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest() if kind == "file" else "0" * 40
        api = f"{self.base_url}/repos/{repo.full_name}/contents/{path}"
        html = f"https://github.com/{repo.full_name}/{'blob' if kind == 'file' else 'tree'}/main/{path}"
        return {
            "type": kind,
            "size": len(content) if kind == "file" else 0,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "url": api,
            "git_url": None,
            "html_url": html,
            "download_url": None,
            "_links": {"self": api, "git": None, "html": html},
        }

    def _directory(self, repo: Repo, path: str) -> list[dict[str, Any]]:
        """The direct children of a folder (files and sub-folders), as the contents API lists them."""
        prefix = f"{path}/" if path else ""
        children: dict[str, str] = {}
        for name in repo.contents:
            if name.startswith(prefix):
                rest = name[len(prefix) :]
                head, _, tail = rest.partition("/")
                children[prefix + head] = "dir" if tail else "file"
        return [self._content_item(repo, child, kind) for child, kind in sorted(children.items())]

    def set_file(self, full_name: str, path: str, text: str | bytes) -> None:
        """Put a file on a repository's default branch."""
        repo = self.repos[full_name]
        repo.contents[path.strip("/")] = text.encode() if isinstance(text, str) else text

    def remove_file(self, full_name: str, path: str) -> None:
        """Delete a file from a repository's default branch."""
        self.repos[full_name].contents.pop(path.strip("/"), None)

    def set_permission(self, full_name: str, login: str, role: str) -> None:
        """Give someone a role in a repository: read, triage, write, maintain or admin."""
        self.repos[full_name].permissions[login] = role

    def minimized(self, comment_id: int) -> str | None:
        """Why a comment was minimized (lower-case classifier), or None."""
        state = self.comments[comment_id].get("minimized")
        return state["reason"] if state else None

    def reactions(self, comment_id: int) -> list[str]:
        """The contents of the reactions on a comment."""
        return [r["content"] for r in self.comments[comment_id]["reactions_list"]]

    def _public_comment(self, comment: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in comment.items() if k != "reactions_list"}

    def _repo_route(self, request: web.Request, route: Route, record: RecordedRequest) -> web.Response:
        p = route.params
        repo = self.repos.get(f"{p['owner']}/{p['repo']}")
        if repo is None:
            return self._error(404, "Not Found")
        problem = self._check_token(request, repo)
        if problem:
            return self._auth_fail(request, problem)
        method, template, data = request.method, route.template, record.json
        suffix = template[len("/repos/{owner}/{repo}") :]

        if suffix == "/installation":
            return self._json({"id": repo.installation_id, "app_id": self.app_id, "app_slug": self.slug})
        if suffix.startswith("/issues/comments/{comment_id}"):
            cid = int(p["comment_id"])
            comment = self.comments.get(cid)
            if comment is None or self._comment_issue[cid][0] != repo.full_name:
                return self._error(404, "Not Found")
            if suffix.endswith("/reactions"):
                for existing in comment["reactions_list"]:
                    if existing["content"] == data["content"]:
                        return self._json(existing, 200)  # GitHub: the reaction already exists
                reaction = {
                    "id": self._new_id(),
                    "node_id": "R_x",
                    "content": data["content"],
                    "user": self._user(self.bot_login, "Bot"),
                    "created_at": _iso(self.clock()),
                }
                comment["reactions_list"].append(reaction)
                return self._json(reaction, 201)
            if method == "GET":
                return self._json(self._public_comment(comment))
            if method == "PATCH":
                comment["body"] = data["body"]
                comment["updated_at"] = _iso(self.clock())
                return self._json(self._public_comment(comment))
            del self.comments[cid]
            del self._comment_issue[cid]
            return self._json(None, 204)
        if suffix == "/collaborators/{username}/permission":
            level = repo.permissions.get(p["username"], "none")
            if level == "none" and p["username"] not in repo.permissions:
                return self._error(404, f"{p['username']} is not a user")
            role = {"admin": "admin", "maintain": "maintain", "write": "write", "triage": "triage"}
            # `permission` folds maintain into write and triage into read; `role_name` keeps them apart.
            folded = {"maintain": "write", "triage": "read"}.get(level, level)
            return self._json(
                {
                    "permission": folded if folded in ("admin", "write", "read", "none") else "read",
                    "role_name": role.get(level, level),
                    "user": self._user(p["username"]),
                }
            )
        if suffix == "/contents/{path}":
            path = p["path"].strip("/")
            content = repo.contents.get(path)
            if content is None:
                listing = self._directory(repo, path)
                if not listing:
                    return self._error(404, "Not Found")
                return self._json(listing)
            entry = self._content_item(repo, path, "file")
            entry.update(encoding="base64", content=base64.b64encode(content).decode("ascii"))
            return self._json(entry)
        if not suffix.startswith("/issues/{issue_number}"):
            self.violations.append(f"{method} {request.path}: not emulated by the fake")
            return self._error(404, "Not Found")
        number = int(p["issue_number"])
        issue = repo.issues.get(number)
        if issue is None:
            return self._error(404, "Not Found")
        if suffix == "/issues/{issue_number}":
            return self._json(issue)
        if suffix == "/issues/{issue_number}/comments":
            if method == "GET":
                comments = [self._public_comment(c) for c in self.issue_comments(repo.full_name, number)]
                return self._paginate(request, comments)
            comment = self.add_comment(
                repo.full_name, number, data["body"], user=self.bot_login, user_type="Bot"
            )
            return self._json(self._public_comment(comment), 201)
        if suffix == "/issues/{issue_number}/labels":
            if method == "POST":
                names = [x if isinstance(x, str) else x["name"] for x in data["labels"]]
                have = {lab["name"] for lab in issue["labels"]}
                issue["labels"].extend(self._label(n) for n in names if n not in have)
            return self._paginate(request, list(issue["labels"]))
        if suffix == "/issues/{issue_number}/labels/{name}":
            before = len(issue["labels"])
            issue["labels"] = [lab for lab in issue["labels"] if lab["name"] != p["name"]]
            if len(issue["labels"]) == before:
                return self._error(404, "Label does not exist")
            return self._json(issue["labels"])
        if suffix == "/issues/{issue_number}/reactions":
            return self._json({"id": self._new_id(), "content": data["content"]}, 201)
        self.violations.append(f"{method} {request.path}: not emulated by the fake")
        return self._error(404, "Not Found")

    # ---- GraphQL (just minimizeComment) ----------------------------------------------------
    async def _graphql(self, request: web.Request, record: RecordedRequest) -> web.Response:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        held = self.tokens.get(token) if scheme.lower() in ("token", "bearer") else None
        if held is None or held[1] <= self.clock():
            return self._auth_fail(request, "GraphQL needs a valid installation token")
        data = record.json
        if not isinstance(data, dict) or not isinstance(data.get("query"), str):
            self.violations.append("POST /graphql: body must be an object with a 'query' string")
            return self._json({"errors": [{"message": "A query attribute must be specified"}]}, 200)
        query: str = data["query"]
        if "minimizeComment" not in query:
            self.violations.append("POST /graphql: only minimizeComment is emulated")
            return self._json({"errors": [{"message": "not emulated"}]}, 200)
        text = json.dumps(data.get("variables") or {}) + query
        node_ids = re.findall(r'"?(IC_\d+)"?', text)
        classifiers = re.findall(r"\b(SPAM|ABUSE|OFF_TOPIC|OUTDATED|DUPLICATE|RESOLVED)\b", text)
        if not node_ids or not classifiers:
            self.violations.append("POST /graphql: minimizeComment needs subjectId and classifier")
            return self._json({"errors": [{"message": "missing subjectId or classifier"}]}, 200)
        cid = int(node_ids[0][3:])
        comment = self.comments.get(cid)
        if comment is None:
            return self._json({"errors": [{"type": "NOT_FOUND", "message": "Could not resolve"}]}, 200)
        owner_repo = self.repos.get(self._comment_issue[cid][0])
        if owner_repo is None or owner_repo.installation_id != held[0]:
            return self._json({"errors": [{"type": "FORBIDDEN", "message": "Resource not accessible"}]}, 200)
        comment["minimized"] = {"reason": classifiers[0].lower()}
        return self._json(
            {
                "data": {
                    "minimizeComment": {
                        "minimizedComment": {"isMinimized": True, "minimizedReason": classifiers[0]}
                    }
                }
            }
        )
