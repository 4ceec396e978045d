"""The environment, read once and validated: every problem is reported at the same time."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.errors import SettingsError
from bot.queue import QueueSettings, queue_settings_from_env

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_DATABASE_URL = "sqlite:///./data/linker-triage.sqlite3"
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB
DEFAULT_WORKERS = 4
DEFAULT_KNOWLEDGE_DIR = Path(__file__).resolve().parent.parent / "knowledge"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Settings:
    """Validated configuration of one server process; secrets are kept out of repr."""

    app_id: int
    private_key: str = field(repr=False)
    webhook_secrets: tuple[str, ...] = field(repr=False)
    api_url: str = DEFAULT_API_URL
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)  # may hold a password
    port: int = DEFAULT_PORT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    workers: int = DEFAULT_WORKERS
    log_level: str = "INFO"
    knowledge_dir: Path = DEFAULT_KNOWLEDGE_DIR
    queue: QueueSettings = field(default_factory=QueueSettings)  # WORKERS and QUEUE_* variables


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from an environment mapping, or raise SettingsError naming every problem."""
    problems: list[str] = []

    def get(name: str) -> str | None:
        value = environ.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def integer(name: str, default: int | None, low: int, high: int | None = None) -> int:
        raw = get(name)
        if raw is None:
            if default is None:
                problems.append(f"{name} is required")
                return 0
            return default
        try:
            value = int(raw)
        except ValueError:
            problems.append(f"{name} must be an integer, got {raw!r}")
            return 0
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            problems.append(f"{name} must be {bounds}, got {value}")
        return value

    app_id = integer("GITHUB_APP_ID", None, 1)
    private_key = _private_key(environ, problems)

    secrets: tuple[str, ...] = ()
    raw_secret = environ.get("GITHUB_WEBHOOK_SECRET")
    if raw_secret is None or not raw_secret.strip():
        problems.append("GITHUB_WEBHOOK_SECRET is required (a comma-separated list allows rotation)")
    else:
        secrets = tuple(s.strip() for s in raw_secret.split(",") if s.strip())
        if not secrets:
            problems.append("GITHUB_WEBHOOK_SECRET holds no secret, only commas")

    api_url = (get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"GITHUB_API_URL must be an http(s) URL, got {api_url!r}")

    database_url = get("DATABASE_URL") or DEFAULT_DATABASE_URL
    db_problem = _check_database_url(database_url)
    if db_problem:
        problems.append(db_problem)

    port = integer("PORT", DEFAULT_PORT, 1, 65535)
    max_body = integer("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1024)
    workers = integer("WORKERS", DEFAULT_WORKERS, 1, 256)
    queue = queue_settings_from_env(environ, concurrency=max(workers, 1), problems=problems)

    log_level = (get("LOG_LEVEL") or "INFO").upper()
    if log_level not in LOG_LEVELS:
        problems.append(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")

    knowledge_raw = get("KNOWLEDGE_DIR")
    knowledge_dir = Path(knowledge_raw) if knowledge_raw else DEFAULT_KNOWLEDGE_DIR
    if not knowledge_dir.is_dir():
        problems.append(f"KNOWLEDGE_DIR {str(knowledge_dir)!r} is not a directory")

    if problems:
        raise SettingsError(problems)
    return Settings(
        app_id=app_id,
        private_key=private_key,
        webhook_secrets=secrets,
        api_url=api_url,
        database_url=database_url,
        port=port,
        max_body_bytes=max_body,
        workers=workers,
        log_level=log_level,
        knowledge_dir=knowledge_dir,
        queue=queue,
    )


def log_level_number(settings: Settings) -> int:
    """The logging module's number for the configured level."""
    return logging.getLevelNamesMapping()[settings.log_level]


def _private_key(environ: Mapping[str, str], problems: list[str]) -> str:
    """The validated PEM text of the App's private key, or "" after recording the problem."""
    inline = environ.get("GITHUB_PRIVATE_KEY", "").strip()
    path = environ.get("GITHUB_PRIVATE_KEY_PATH", "").strip()
    if inline and path:
        problems.append("set only one of GITHUB_PRIVATE_KEY and GITHUB_PRIVATE_KEY_PATH")
        return ""
    if not inline and not path:
        problems.append("GITHUB_PRIVATE_KEY (PEM text) or GITHUB_PRIVATE_KEY_PATH is required")
        return ""
    source = "GITHUB_PRIVATE_KEY"
    text = inline
    if path:
        source = f"GITHUB_PRIVATE_KEY_PATH ({path})"
        try:
            text = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{source} cannot be read: {exc.__class__.__name__}")
            return ""
    # Platforms that only take one-line variables get the PEM with literal "\n" sequences.
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\r\\n", "\n").replace("\\n", "\n").strip()
    try:
        key = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
    except (ValueError, TypeError):
        problems.append(f"{source} is not an unencrypted PEM private key")
        return ""
    except Exception:  # cryptography raises UnsupportedAlgorithm and friends
        problems.append(f"{source} is not a usable private key")
        return ""
    if not isinstance(key, rsa.RSAPrivateKey):
        problems.append(f"{source} must be an RSA key (GitHub Apps sign with RS256)")
        return ""
    return text + "\n"


def _check_database_url(url: str) -> str | None:
    """A problem description for a malformed DATABASE_URL (password masked), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "DATABASE_URL is not a valid URL"
    shown = url
    if parts.password:
        shown = url.replace(f":{parts.password}@", ":***@")
    if parts.scheme == "sqlite":
        if parts.netloc or parts.path in ("", "/"):
            return f"DATABASE_URL must look like sqlite:///path/to/file.sqlite3, got {shown!r}"
        return None
    if parts.scheme in ("postgresql", "postgres"):
        if not parts.hostname and parts.path in ("", "/"):
            return f"DATABASE_URL needs a host or database name, got {shown!r}"
        return None
    return f"DATABASE_URL must start with sqlite:/// or postgresql://, got {shown!r}"
