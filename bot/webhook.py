"""Webhook deliveries without I/O: signature check, header and payload validation, routing verdict."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from bot.store.base import Delivery

# event -> actions the bot acts on (None: every action).
RELEVANT: dict[str, frozenset[str] | None] = {
    "issues": frozenset({"opened", "edited", "reopened"}),
    "issue_comment": frozenset({"created", "edited"}),
    "installation": None,
    "installation_repositories": None,
}

Verdict = Literal["ping", "ignored", "no_installation", "enqueue"]

# GitHub ids are positive and fit the stores' 64-bit integer columns; anything else is not from GitHub.
MAX_ID = 2**63 - 1
# GitHub's action names are short words ("opened", "pending_cancellation"); a long one is not GitHub's.
MAX_ACTION_CHARS = 100


class WebhookError(Exception):
    """A delivery the server refuses; `status` is the HTTP answer (400, 401)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ParsedDelivery:
    """What the server should do with a verified delivery, and the Delivery to store if any."""

    verdict: Verdict
    delivery_id: str
    event: str
    action: str | None
    delivery: Delivery | None = None


def signature_matches(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """True when X-Hub-Signature-256 is the HMAC-SHA256 of the body under one of the secrets."""
    if not header or not header.startswith("sha256="):
        return False
    given = header[len("sha256=") :].strip().lower()
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        # Compare against every secret so the timing does not tell which one matched.
        matched |= hmac.compare_digest(expected, given)
    return matched


def sign(body: bytes, secret: str) -> str:
    """The X-Hub-Signature-256 header value GitHub would send for this body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    if value is None or not value.strip():
        return None
    return value.strip()


def _parse_json(body: bytes) -> Any:
    """The body's JSON value: orjson for speed, json for what only json accepts (escaped lone
    surrogates, which issue text can carry; NaN)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # 100,000 nested '[': orjson stops at depth 1024
            raise WebhookError(400, "body is nested too deeply") from None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError(400, "body is not valid JSON") from None
    except RecursionError:
        raise WebhookError(400, "body is nested too deeply") from None


def parse_delivery(headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> ParsedDelivery:
    """Verify and classify one delivery; raise WebhookError(401 or 400) when it must be refused."""
    if not signature_matches(body, _header(headers, "X-Hub-Signature-256"), secrets):
        raise WebhookError(401, "missing or invalid X-Hub-Signature-256")
    event = _header(headers, "X-GitHub-Event")
    delivery_id = _header(headers, "X-GitHub-Delivery")
    if event is None:
        raise WebhookError(400, "missing X-GitHub-Event header")
    if delivery_id is None:
        raise WebhookError(400, "missing X-GitHub-Delivery header")
    if len(delivery_id) > 200:
        raise WebhookError(400, "X-GitHub-Delivery header is too long")
    payload = _parse_json(body)
    if not isinstance(payload, dict):
        raise WebhookError(400, "body is not a JSON object")

    action = payload.get("action")
    if action is not None and not isinstance(action, str):
        raise WebhookError(400, "'action' must be a string")
    if action is not None and len(action) > MAX_ACTION_CHARS:
        raise WebhookError(400, "'action' is too long")
    if event == "ping":
        return ParsedDelivery("ping", delivery_id, event, action)
    if event not in RELEVANT:
        return ParsedDelivery("ignored", delivery_id, event, action)
    actions = RELEVANT[event]
    if action is None:
        raise WebhookError(400, f"{event} delivery without 'action'")
    if actions is not None and action not in actions:
        return ParsedDelivery("ignored", delivery_id, event, action)

    installation = payload.get("installation")
    if installation is None:
        return ParsedDelivery("no_installation", delivery_id, event, action)
    installation_id = _int_field(installation, "id", "installation")
    sender = payload.get("sender")
    if sender is not None and not isinstance(sender, dict):
        raise WebhookError(400, "'sender' must be an object")

    issue_key: str | None = None
    if event in ("issues", "issue_comment"):
        issue_key = _issue_key(payload)
        if event == "issue_comment":
            comment = _object(payload, "comment")
            _int_field(comment, "id", "comment")
            _optional_str(comment, "body", "comment")
            _object(comment, "user", "comment")
    delivery = Delivery(
        delivery_id=delivery_id,
        event=event,
        action=action,
        payload=body,
        issue_key=issue_key,
        installation_id=installation_id,
    )
    return ParsedDelivery("enqueue", delivery_id, event, action, delivery)


def _object(parent: Mapping[str, Any], key: str, where: str = "payload") -> Mapping[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise WebhookError(400, f"'{where}.{key}' must be an object")
    return value


def _int_field(parent: Any, key: str, where: str) -> int:
    if not isinstance(parent, dict):
        raise WebhookError(400, f"'{where}' must be an object")
    value = parent.get(key)
    # bool is an int subclass; GitHub never sends one for an id.
    if not isinstance(value, int) or isinstance(value, bool):
        raise WebhookError(400, f"'{where}.{key}' must be an integer")
    if not 0 < value <= MAX_ID:
        raise WebhookError(400, f"'{where}.{key}' must be a positive 64-bit integer")
    return value


def _optional_str(parent: Mapping[str, Any], key: str, where: str) -> None:
    value = parent.get(key)
    if value is not None and not isinstance(value, str):
        raise WebhookError(400, f"'{where}.{key}' must be a string or null")


def _issue_key(payload: Mapping[str, Any]) -> str:
    issue = _object(payload, "issue")
    number = _int_field(issue, "number", "issue")
    _optional_str(issue, "title", "issue")
    _optional_str(issue, "body", "issue")
    _object(issue, "user", "issue")
    repository = _object(payload, "repository")
    full_name = repository.get("full_name")
    if not isinstance(full_name, str) or full_name.count("/") != 1:
        raise WebhookError(400, "'repository.full_name' must be a string 'owner/name'")
    return f"{full_name}#{number}"
