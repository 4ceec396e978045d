"""The aiohttp application: webhook route, health probes, worker lifecycle, JSON logging, serve()."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web

from bot.errors import KnowledgeError
from bot.github import GitHubApp, make_session
from bot.handlers import TriageFn
from bot.knowledge import KnowledgeBase, load_knowledge_base
from bot.processing import Processor
from bot.queue import ProcessFn, QueueSettings, WorkerPool
from bot.settings import Settings
from bot.store import open_store
from bot.store.base import EnqueueOutcome, Store
from bot.triage import compile_knowledge_base
from bot.webhook import WebhookError, parse_delivery

log = logging.getLogger("bot.server")

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
POOL = web.AppKey("pool", WorkerPool)
READ_CHUNK = 64 * 1024
# A client that stops sending mid-body must not hold a connection and a handler forever (aiohttp has
# no read timeout of its own); GitHub sends a whole delivery in well under its own 10 s timeout.
BODY_READ_TIMEOUT = 30.0
PING_TIMEOUT = 2.0


def _answer(status: int, message: str, **extra: Any) -> web.Response:
    headers = {"Connection": "close"} if status == 413 else None
    return web.json_response({"message": message, **extra}, status=status, headers=headers)


async def _read_capped(request: web.Request, cap: int) -> bytes | None:
    """The request body, or None as soon as it grows past `cap` bytes (the rest is never read)."""
    if request.content_length is not None and request.content_length > cap:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(READ_CHUNK):
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def webhook(request: web.Request) -> web.Response:
    """POST /webhook: verify, validate, persist, then answer (202 stored, 200 nothing to do)."""
    settings = request.app[SETTINGS]
    started = time.monotonic()
    delivery_id = request.headers.get("X-GitHub-Delivery", "-")[:200]
    event = request.headers.get("X-GitHub-Event", "-")[:100]

    def done(status: int, outcome: str, action: str | None = None) -> None:
        ms = round((time.monotonic() - started) * 1000, 1)
        log.info(
            "webhook delivery=%s event=%s action=%s status=%d outcome=%s",
            delivery_id,
            event,
            action,
            status,
            outcome,
            extra={
                "fields": {
                    "delivery": delivery_id,
                    "event": event,
                    "action": action,
                    "status": status,
                    "outcome": outcome,
                    "ms": ms,
                }
            },
        )

    try:
        async with asyncio.timeout(BODY_READ_TIMEOUT):
            body = await _read_capped(request, settings.max_body_bytes)
    except (aiohttp.ClientPayloadError, ConnectionError, asyncio.IncompleteReadError):
        done(400, "body could not be read")
        return _answer(400, "body could not be read")
    except TimeoutError:
        done(400, "body not received in time")
        return _answer(400, "body not received in time")
    if body is None:
        done(413, "body too large")
        return _answer(413, f"body larger than {settings.max_body_bytes} bytes")
    try:
        parsed = parse_delivery(request.headers, body, settings.webhook_secrets)
    except WebhookError as exc:
        done(exc.status, f"rejected: {exc.message}")
        return _answer(exc.status, exc.message)

    if parsed.verdict == "ping":
        done(200, "pong")
        return _answer(200, "pong")
    if parsed.verdict == "ignored":
        done(200, "ignored", parsed.action)
        return _answer(200, "event ignored")
    if parsed.verdict == "no_installation":
        done(200, "no installation in payload: not an App delivery", parsed.action)
        return _answer(200, "no installation in payload; ignored")

    assert parsed.delivery is not None
    store = request.app[STORE]
    try:
        outcome = await store.enqueue(parsed.delivery)
    except Exception:
        log.exception("could not store delivery %s", parsed.delivery_id)
        done(503, "store unavailable", parsed.action)
        return _answer(503, "could not store the delivery; please redeliver")
    pool = request.app.get(POOL)
    if pool is not None and outcome is not EnqueueOutcome.DUPLICATE:
        pool.wake()
    done(202, f"queued ({outcome.value})", parsed.action)
    return _answer(202, "accepted", outcome=outcome.value)


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: the process is up."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: 200 when the store answers, 503 otherwise."""
    try:
        await asyncio.wait_for(request.app[STORE].ping(), timeout=PING_TIMEOUT)
    except Exception as exc:
        log.warning("readiness check failed: %s", exc.__class__.__name__)
        return web.json_response({"status": "unavailable"}, status=503)
    return web.json_response({"status": "ready"})


def make_app(
    settings: Settings,
    *,
    store: Store,
    process: ProcessFn | None = None,
    queue_settings: QueueSettings | None = None,
) -> web.Application:
    """The web application; with `process`, queue workers start and stop with it (settings.queue
    unless `queue_settings` overrides it)."""
    # The webhook route streams and caps the body itself; this limit only guards other routes.
    app = web.Application(client_max_size=settings.max_body_bytes + 1)
    app[SETTINGS] = settings
    app[STORE] = store
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if process is not None:
        pool = WorkerPool(store, process, queue_settings or settings.queue)
        app[POOL] = pool

        async def start_workers(app: web.Application) -> None:
            await pool.start()

        async def stop_workers(app: web.Application) -> None:
            # Stop claiming, let running jobs finish for a while, release the rest.
            await pool.stop()

        app.on_startup.append(start_workers)
        app.on_shutdown.append(stop_workers)
    return app


def make_processor(
    settings: Settings,
    *,
    store: Store,
    session: aiohttp.ClientSession,
    kb: KnowledgeBase,
    triage: TriageFn | None = None,
    clock: Callable[[], float] = time.time,
) -> Processor:
    """The job callback, wired to a GitHub App client on the shared session."""
    if triage is None:
        from bot.triage import triage as triage_fn

        triage = triage_fn
    app = GitHubApp(
        session,
        app_id=settings.app_id,
        private_key=settings.private_key,
        base_url=settings.api_url,
        clock=clock,
    )
    return Processor(store=store, app=app, kb=kb, triage=triage, clock=clock)


# aiohttp logs a malformed request with its raw bytes (up to ~100 kB): unauthenticated clients must not
# be able to flood the log, so messages and tracebacks are cut.
MAX_LOG_MESSAGE = 2_000
MAX_LOG_TRACEBACK = 8_000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" …[{len(text) - limit} characters cut]"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as a JSON line."""
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": _cut(record.getMessage(), MAX_LOG_MESSAGE),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update(fields)
        if record.exc_info:
            data["exc"] = _cut(self.formatException(record.exc_info), MAX_LOG_TRACEBACK)
        return json.dumps(data, default=str)


def configure_logging(level: str) -> None:
    """Send JSON log lines to stderr at the configured level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def freeze_startup_heap() -> None:
    """Exempt everything allocated at start-up from the garbage collector's full passes.

    A full (generation 2) collection walks every live object: with the modules, the knowledge base and
    aiohttp loaded it stalled the event loop for 50-60 ms under load, the largest part of the p99
    acknowledgement latency. Objects created later are still collected as usual."""
    gc.collect()
    gc.freeze()


async def _application(settings: Settings, kb: KnowledgeBase) -> web.Application:
    compile_knowledge_base(kb)  # now rather than on the first delivery, and before the heap is frozen
    store = open_store(settings.database_url)
    await store.open()
    session = make_session()
    process = make_processor(settings, store=store, session=session, kb=kb)
    app = make_app(settings, store=store, process=process)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        yield
        # Runs after on_shutdown has stopped the workers.
        await session.close()
        await store.close()

    app.cleanup_ctx.append(resources)
    freeze_startup_heap()
    return app


def serve(settings: Settings) -> None:
    """Run the server on 0.0.0.0:$PORT until SIGTERM/SIGINT; raises KnowledgeError on a broken base."""
    configure_logging(settings.log_level)
    try:
        kb = load_knowledge_base(settings.knowledge_dir)
    except KnowledgeError:
        log.error("knowledge base in %s is invalid; not starting", settings.knowledge_dir)
        raise
    log.info(
        "starting on port %d with knowledge base %s, %d workers",
        settings.port,
        kb.version,
        settings.workers,
        extra={"fields": {"port": settings.port, "kb_version": kb.version, "workers": settings.workers}},
    )
    web.run_app(
        _application(settings, kb),
        host="0.0.0.0",
        port=settings.port,
        access_log=None,
        print=None,
        shutdown_timeout=15.0,
    )
