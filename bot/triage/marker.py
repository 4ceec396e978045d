"""The hidden marker in the bot's own comments: how it finds and understands them later."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MARKER_PREFIX = "<!-- linker-triage "
MARKER_SUFFIX = " -->"


@dataclass(frozen=True)
class Marker:
    """What a bot comment says about itself."""

    kind: str  # diagnosis | ask
    classes: tuple[str, ...]
    input_hash: str
    kb_version: str

    def render(self) -> str:
        """The HTML comment to put on the comment's first line."""
        data = {
            "v": 1,
            "kind": self.kind,
            "classes": list(self.classes),
            "hash": self.input_hash,
            "kb": self.kb_version,
        }
        # json.dumps never emits "--" inside strings we control, but guard against ids that might.
        text = json.dumps(data, separators=(",", ":")).replace("--", "-\\u002d")
        return f"{MARKER_PREFIX}{text}{MARKER_SUFFIX}"


def parse_marker(body: str | None) -> Marker | None:
    """The marker in a comment body, or None when the comment is not one of ours."""
    if not body:
        return None
    start = body.find(MARKER_PREFIX)
    if start < 0:
        return None
    end = body.find(MARKER_SUFFIX, start + len(MARKER_PREFIX))
    if end < 0:
        return None
    try:
        data: Any = json.loads(body[start + len(MARKER_PREFIX) : end])
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("v") != 1:
        return None
    classes = data.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        return None
    return Marker(
        kind=str(data.get("kind", "diagnosis")),
        classes=tuple(classes),
        input_hash=str(data.get("hash", "")),
        kb_version=str(data.get("kb", "")),
    )
