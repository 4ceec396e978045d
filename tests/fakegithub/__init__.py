"""A fake GitHub REST API server for tests, checked against GitHub's own OpenAPI description."""

from .server import FakeGitHub, Fault, RecordedRequest, Repo, generate_private_key, public_key_of

__all__ = ["FakeGitHub", "Fault", "RecordedRequest", "Repo", "generate_private_key", "public_key_of"]
