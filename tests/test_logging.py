"""Log lines are JSON and bounded, whatever a client sends."""

from __future__ import annotations

import json
import logging

from bot.server import MAX_LOG_MESSAGE, JsonFormatter


def test_huge_messages_are_cut_and_stay_json() -> None:
    record = logging.LogRecord(
        "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request %s", ("x" * 100_000,), None
    )
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert len(data["msg"]) < MAX_LOG_MESSAGE + 100
    assert data["msg"].endswith("characters cut]")
    assert data["logger"] == "aiohttp.server" and data["level"] == "ERROR"


def test_fields_are_merged() -> None:
    record = logging.LogRecord("bot.server", logging.INFO, __file__, 1, "webhook", (), None)
    record.fields = {"delivery": "abc", "status": 202}
    assert json.loads(JsonFormatter().format(record))["delivery"] == "abc"
