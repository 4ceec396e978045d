"""A driver for end-to-end tests: signed deliveries into the running app, waiting for its queue."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import delivery_headers
from tests.fakegithub import FakeGitHub

PUREGO_LINE = "dlopen: unhandled relocation for purego_dlopen (type 46 (SDYNIMPORT) rtype 7 (R_CALL))"
PUREGO_BODY = f"""Building my app on Linux fails since I added a cgo dependency.

```
$ go build ./cmd/app
# example.com/app
{PUREGO_LINE}
```

go version go1.21.5 linux/amd64, github.com/ebitengine/purego v0.5.0
"""


@dataclass
class Bot:
    """The running bot (aiohttp test client), its fake GitHub and its store."""

    client: TestClient[Any, Any]
    fake: FakeGitHub
    store: Any
    app: Any = None  # the GitHubApp, for tests that look at its caches

    async def deliver(
        self,
        event: str,
        payload: dict[str, Any] | bytes,
        *,
        delivery_id: str | None = None,
        secret: str | None = None,
    ) -> int:
        """Send one signed delivery; returns the HTTP status."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        kwargs = {"secret": secret} if secret else {}
        headers = delivery_headers(body, event, delivery_id=delivery_id or str(uuid.uuid4()), **kwargs)
        resp = await self.client.post("/webhook", data=body, headers=headers)
        return resp.status

    async def settle(self, limit: float = 20.0) -> None:
        """Wait until every stored job is done or failed."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            jobs = await self.store.list_jobs(None, 1000)
            if all(j.state in ("done", "failed") for j in jobs):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"jobs did not settle: {await self.store.list_jobs(None, 1000)}")

    async def failed_jobs(self) -> list[Any]:
        """Jobs that failed for good."""
        return list(await self.store.list_jobs("failed", 1000))
