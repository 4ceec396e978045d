"""Settings from the environment: defaults, accepted forms, and every problem named at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bot.errors import SettingsError
from bot.settings import DEFAULT_API_URL, DEFAULT_DATABASE_URL, load_settings

SECRET = "s3cret-value"


@pytest.fixture
def env(private_key: str, tmp_path: Path) -> dict[str, str]:
    return {
        "GITHUB_APP_ID": "4242",
        "GITHUB_PRIVATE_KEY": private_key,
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "KNOWLEDGE_DIR": str(tmp_path),
    }


def test_minimal_environment_gets_defaults(env: dict[str, str], tmp_path: Path) -> None:
    s = load_settings(env)
    assert s.app_id == 4242
    assert s.webhook_secrets == (SECRET,)
    assert s.api_url == DEFAULT_API_URL
    assert s.database_url == DEFAULT_DATABASE_URL
    assert s.port == 8080
    assert s.max_body_bytes == 25 * 1024 * 1024
    assert s.workers >= 1
    assert s.log_level == "INFO"
    assert s.knowledge_dir == tmp_path


def test_secrets_stay_out_of_repr(env: dict[str, str], private_key: str) -> None:
    s = load_settings(env)
    assert SECRET not in repr(s) and SECRET not in str(s)
    assert "PRIVATE KEY" not in repr(s)


def test_one_line_escaped_key(env: dict[str, str], private_key: str) -> None:
    env["GITHUB_PRIVATE_KEY"] = private_key.strip().replace("\n", "\\n")
    assert load_settings(env).private_key.strip() == private_key.strip()


def test_key_from_path(env: dict[str, str], private_key: str, tmp_path: Path) -> None:
    path = tmp_path / "app.pem"
    path.write_text(private_key)
    del env["GITHUB_PRIVATE_KEY"]
    env["GITHUB_PRIVATE_KEY_PATH"] = str(path)
    assert load_settings(env).private_key.strip() == private_key.strip()


def test_secret_rotation_list(env: dict[str, str]) -> None:
    env["GITHUB_WEBHOOK_SECRET"] = " new-secret , old-secret ,"
    assert load_settings(env).webhook_secrets == ("new-secret", "old-secret")


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///data/x.sqlite3",
        "sqlite:////var/lib/linker/x.sqlite3",
        "postgresql://bot:pw@db.internal:5432/linker",
        "postgres://db/linker",
        "postgresql:///linker",
    ],
)
def test_database_urls_accepted(env: dict[str, str], url: str) -> None:
    env["DATABASE_URL"] = url
    assert load_settings(env).database_url == url


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"GITHUB_APP_ID": None}, "GITHUB_APP_ID is required"),
        ({"GITHUB_APP_ID": "abc"}, "GITHUB_APP_ID must be an integer"),
        ({"GITHUB_APP_ID": "0"}, "GITHUB_APP_ID must be at least 1"),
        ({"GITHUB_WEBHOOK_SECRET": None}, "GITHUB_WEBHOOK_SECRET is required"),
        ({"GITHUB_WEBHOOK_SECRET": " , "}, "GITHUB_WEBHOOK_SECRET holds no secret"),
        (
            {"GITHUB_PRIVATE_KEY": None},
            "GITHUB_PRIVATE_KEY (PEM text) or GITHUB_PRIVATE_KEY_PATH is required",
        ),
        ({"GITHUB_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nnope\n"}, "not an unencrypted PEM"),
        ({"GITHUB_PRIVATE_KEY_PATH": "/nonexistent/key.pem"}, "set only one of"),
        ({"GITHUB_PRIVATE_KEY": None, "GITHUB_PRIVATE_KEY_PATH": "/nonexistent.pem"}, "cannot be read"),
        ({"GITHUB_API_URL": "ftp://example"}, "GITHUB_API_URL must be an http(s) URL"),
        ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL must start with sqlite:/// or postgresql://"),
        ({"DATABASE_URL": "sqlite://"}, "DATABASE_URL must look like sqlite:///"),
        ({"DATABASE_URL": "postgresql://h:notaport/db"}, "DATABASE_URL is not a valid URL"),
        ({"PORT": "http"}, "PORT must be an integer"),
        ({"PORT": "70000"}, "PORT must be between 1 and 65535"),
        ({"WORKERS": "0"}, "WORKERS must be between 1 and 256"),
        ({"MAX_BODY_BYTES": "1k"}, "MAX_BODY_BYTES must be an integer"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be one of"),
        ({"KNOWLEDGE_DIR": "/nonexistent/kb"}, "KNOWLEDGE_DIR"),
    ],
)
def test_each_problem_is_named(env: dict[str, str], changes: dict[str, str | None], problem: str) -> None:
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert any(problem in p for p in info.value.problems), info.value.problems
    assert SECRET not in str(info.value)


def test_all_problems_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"GITHUB_APP_ID": "x", "PORT": "y", "DATABASE_URL": "redis://z", "KNOWLEDGE_DIR": "/"})
    text = str(info.value)
    for name in ("GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "GITHUB_WEBHOOK_SECRET", "DATABASE_URL", "PORT"):
        assert name in text
    assert len(info.value.problems) == 5


def test_errors_never_show_key_or_password(env: dict[str, str], private_key: str) -> None:
    env["GITHUB_PRIVATE_KEY"] = private_key[:200]  # truncated: malformed
    env["DATABASE_URL"] = "mysql://bot:hunter2@db/x"
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    text = str(info.value)
    assert private_key[40:80] not in text
    assert "hunter2" not in text


def test_non_rsa_key_is_refused(env: dict[str, str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    env["GITHUB_PRIVATE_KEY"] = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(SettingsError, match="RSA"):
        load_settings(env)


def test_queue_tuning_comes_along(env: dict[str, str]) -> None:
    env.update(WORKERS="3", QUEUE_MAX_ATTEMPTS="5", QUEUE_LEASE_SECONDS="30")
    s = load_settings(env)
    assert (s.workers, s.queue.concurrency, s.queue.max_attempts, s.queue.lease_seconds) == (3, 3, 5, 30.0)
    env["QUEUE_MAX_ATTEMPTS"] = "many"
    with pytest.raises(SettingsError, match="QUEUE_MAX_ATTEMPTS"):
        load_settings(env)


def test_env_example_documents_every_variable() -> None:
    import re

    from bot.queue import QUEUE_ENV

    root = Path(__file__).resolve().parent.parent
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (root / ".env.example").read_text(), re.M))
    source = (root / "bot" / "settings.py").read_text()
    read = set(re.findall(r'"([A-Z][A-Z0-9_]{3,})"', source)) - {
        "INFO",
        "DEBUG",
        "WARNING",
        "ERROR",
        "CRITICAL",
    }
    assert read | set(QUEUE_ENV) <= documented
