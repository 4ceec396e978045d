"""Benchmark: webhook acknowledgement throughput and latency (signed delivery in, durable enqueue, 202 out).

Run: .venv/bin/python bench/ack_latency.py [-n 5000] [--senders 100] [--rate 1000] [--database-url URL]
Starts the real aiohttp app with the real store in a child process (no workers, no GitHub calls: acking
only verifies and persists), then sends N signed `issues` deliveries from 100 concurrent senders over
loopback and reports deliveries/s and ack latency p50/p90/p99/max. Without --database-url it measures
the app without a store (the baseline: HTTP, signature, parsing), SQLite (a fresh file in a temporary
folder) and, when TEST_DATABASE_URL is set, PostgreSQL (in a throw-away schema). Never run from the
tests: timings depend on the machine, and the client shares its CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-secret"
PAYLOAD_FILE = ROOT / "tests" / "fixtures" / "webhooks" / "issues.opened.1.json"


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def private_key_pem() -> str:
    """A throw-away RSA key (settings insist on a valid App key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


class NullStore:
    """A store that keeps nothing: the baseline cost of HTTP, signature check and parsing alone."""

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def ping(self) -> None:
        """Always reachable."""

    async def enqueue(self, delivery: Any) -> Any:
        """Accept without storing."""
        from bot.store.base import EnqueueOutcome

        return EnqueueOutcome.NEW


def serve(database_url: str, port: int) -> None:
    """Child process: the real app (webhook route + store), without queue workers."""
    from aiohttp import web

    from bot.server import freeze_startup_heap, make_app
    from bot.settings import load_settings
    from bot.store import open_store

    env = {
        "GITHUB_APP_ID": "1",
        "GITHUB_PRIVATE_KEY": private_key_pem(),
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "DATABASE_URL": "sqlite:///unused.sqlite3" if database_url == "null:" else database_url,
        "KNOWLEDGE_DIR": tempfile.gettempdir(),
        "PORT": str(port),
    }
    settings = load_settings(env)

    async def application() -> web.Application:
        store: Any = NullStore() if database_url == "null:" else open_store(settings.database_url)
        await store.open()
        app = make_app(settings, store=store)

        async def close_store(app: web.Application) -> None:
            await store.close()

        app.on_cleanup.append(close_store)
        freeze_startup_heap()  # as `python -m bot serve` does
        return app

    web.run_app(application(), host="127.0.0.1", port=port, access_log=None, print=None)


def payload(number: int) -> bytes:
    """A real-looking `issues.opened` body for issue `number`."""
    if PAYLOAD_FILE.exists():
        data: dict[str, Any] = json.loads(PAYLOAD_FILE.read_text(encoding="utf-8"))
    else:
        data = {"action": "opened", "repository": {"full_name": "o/r"}, "issue": {"body": "x" * 4000}}
    data["issue"]["number"] = number
    data["installation"] = {"id": 77}
    return json.dumps(data).encode()


async def wait_ready(session: aiohttp.ClientSession, url: str, proc: asyncio.subprocess.Process) -> None:
    """Poll /readyz until the child answers 200."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            async with session.get(url + "/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("server did not become ready")


def raw_request(url: str, body: bytes) -> bytes:
    """One signed delivery as the bytes of an HTTP/1.1 request (built before the clock starts)."""
    from bot.webhook import sign

    host = url.split("://", 1)[1]
    head = (
        f"POST /webhook HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"User-Agent: GitHub-Hookshot/bench\r\nX-GitHub-Event: issues\r\n"
        f"X-GitHub-Delivery: {uuid.uuid4()}\r\nX-Hub-Signature-256: {sign(body, SECRET)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def run_load_raw(url: str, n: int, senders: int, rate: float = 0.0) -> dict[str, Any]:
    """run_load with a lean client: keep-alive connections writing prepared requests, so that the load
    generator takes less of the two CPUs it shares with the server (aiohttp's client took ~50 % of
    one at 1,000/s)."""
    host, port = url.split("://", 1)[1].split(":")
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def sender(jobs: list[tuple[int, bytes]], paced: dict[str, float]) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for index, request in jobs:
                t0 = time.perf_counter()
                if paced["rate"]:
                    t0 = paced["start"] + index / paced["rate"]  # latency from the planned send time
                    await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                status = int(head.split(b" ", 2)[1])
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    warm = [(i, raw_request(url, payload(1))) for i in range(min(200, n))]
    await asyncio.gather(*(sender(warm[k::senders], {"rate": 0.0}) for k in range(senders)))
    latencies.clear()
    statuses.clear()
    requests = [(i, raw_request(url, payload(i % 500 + 1))) for i in range(n)]
    paced = {"rate": rate, "start": time.perf_counter() + 0.05}
    started = paced["start"] if rate else time.perf_counter()
    # Sender k sends deliveries k, k + senders, ...: in open loop each keeps to its own schedule.
    await asyncio.gather(*(sender(requests[k::senders], paced) for k in range(senders)))
    elapsed = time.perf_counter() - started
    return {**summarize(latencies, elapsed), "statuses": statuses}


async def run_load(url: str, n: int, senders: int, rate: float = 0.0) -> dict[str, Any]:
    """Send n deliveries from `senders` concurrent senders (at `rate`/s if > 0, else flat out)."""
    from bot.webhook import sign

    bodies = [payload(i % 500 + 1) for i in range(n)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=senders)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        paced = {"rate": 0.0, "start": 0.0}

        async def sender() -> None:
            while True:
                try:
                    index, body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                headers = {
                    "Content-Type": "application/json",
                    "User-Agent": "GitHub-Hookshot/bench",
                    "X-GitHub-Event": "issues",
                    "X-GitHub-Delivery": str(uuid.uuid4()),
                    "X-Hub-Signature-256": sign(body, SECRET),
                }
                t0 = time.perf_counter()
                if paced["rate"]:
                    # Open loop: latency counts from the planned send time, so a stalled server cannot
                    # hide its backlog by slowing the senders down (no coordinated omission).
                    t0 = paced["start"] + index / paced["rate"]
                    await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
                async with session.post(url + "/webhook", data=body, headers=headers) as resp:
                    await resp.read()
                    latencies.append(time.perf_counter() - t0)
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1

        # warm-up: connections, first statements
        for i in range(min(200, n)):
            queue.put_nowait((i, payload(1)))
        await asyncio.gather(*(sender() for _ in range(senders)))
        latencies.clear()
        statuses.clear()
        for i, body in enumerate(bodies):
            queue.put_nowait((i, body))
        started = time.perf_counter()
        paced.update(rate=rate, start=started)
        await asyncio.gather(*(sender() for _ in range(senders)))
        elapsed = time.perf_counter() - started

    return {**summarize(latencies, elapsed), "statuses": statuses}


def summarize(latencies: list[float], elapsed: float) -> dict[str, Any]:
    """Throughput and latency percentiles (ms) of one run."""
    latencies = sorted(latencies)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "n": len(latencies),
        "seconds": elapsed,
        "per_second": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1] * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
    }


async def store_only(label: str, database_url: str, n: int, senders: int, rate: float) -> dict[str, Any]:
    """The store alone, in this process: `senders` tasks call enqueue() directly (no HTTP)."""
    from bot.store import open_store
    from bot.store.base import Delivery

    store = open_store(database_url)
    await store.open()
    body = payload(1)
    latencies: list[float] = []
    counter = iter(range(n))
    try:
        for _ in range(200):  # warm-up
            await store.enqueue(Delivery(str(uuid.uuid4()), "issues", "opened", body, "o/r#1", 77))
        started = time.perf_counter()

        async def sender() -> None:
            for i in counter:
                t0 = time.perf_counter()
                if rate:
                    t0 = started + i / rate
                    await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
                d = Delivery(str(uuid.uuid4()), "issues", "opened", body, f"o/r#{i % 500}", 77)
                await store.enqueue(d)
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(sender() for _ in range(senders)))
        elapsed = time.perf_counter() - started
    finally:
        await store.close()
    result = summarize(latencies, elapsed)
    print(
        f"{label:<9} {result['n']:>6} enqueues   in {result['seconds']:.2f}s = {result['per_second']:,.0f}/s"
        f"  ack p50 {result['p50_ms']:.1f} ms  p90 {result['p90_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms"
        f"  max {result['max_ms']:.1f} ms  (store only, no HTTP)",
        flush=True,
    )
    return result


async def bench_one(
    label: str, database_url: str, n: int, senders: int, rate: float = 0.0, client: str = "raw"
) -> dict[str, Any]:
    """Start a server on `database_url`, load it, stop it; print and return the figures."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", "--database-url", database_url, "--port", str(port), cwd=ROOT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, url, proc)
        load = run_load if client == "aiohttp" else run_load_raw
        result = await load(url, n, senders, rate)
    finally:
        proc.terminate()
        await proc.wait()
    result["label"] = label
    print(
        f"{label:<9} {result['n']:>6} deliveries in {result['seconds']:.2f}s = {result['per_second']:,.0f}/s"
        f"  ack p50 {result['p50_ms']:.1f} ms  p90 {result['p90_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms"
        f"  max {result['max_ms']:.1f} ms  statuses {result['statuses']}",
        flush=True,
    )
    return result


async def main_async(args: argparse.Namespace) -> None:
    """Run the benchmark for each selected backend."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    mode = f"{args.rate:g}/s offered" if args.rate else "closed loop"
    print(f"{args.n} deliveries, {args.senders} senders, {mode}; {os.cpu_count()} CPUs, load average {load}")
    if args.database_url:
        await bench_one(
            args.label or args.database_url.split(":", 1)[0],
            args.database_url,
            args.n,
            args.senders,
            args.rate,
            args.client,
        )
        return
    await bench_one(
        "no store", "null:", args.n, args.senders, args.rate, args.client
    )  # the HTTP + signature + parse baseline
    with tempfile.TemporaryDirectory() as tmp:
        await bench_one(
            "sqlite", f"sqlite:///{tmp}/bench.sqlite3", args.n, args.senders, args.rate, args.client
        )
        await store_only("sqlite", f"sqlite:///{tmp}/store.sqlite3", args.n, args.senders, args.rate)
    pg = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not pg:
        print("postgres   skipped: set TEST_DATABASE_URL (or pass --database-url) to measure PostgreSQL")
        return
    from bot.store.postgres import PostgresStore

    schema = "lt_bench_" + uuid.uuid4().hex[:8]
    setup = PostgresStore(pg, schema=schema, min_size=1, max_size=1)
    await setup.open()
    try:
        sep = "&" if "?" in pg else "?"
        await bench_one(
            "postgres", f"{pg}{sep}search_path={schema}", args.n, args.senders, args.rate, args.client
        )
        await setup.pool.execute("TRUNCATE jobs")
        await store_only("postgres", f"{pg}{sep}search_path={schema}", args.n, args.senders, args.rate)
    finally:
        await setup.drop_schema()
        await setup.close()


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="deliveries to send (default 5000)")
    parser.add_argument("--senders", type=int, default=100, help="concurrent senders (default 100)")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="offered deliveries/s (open loop); default: as fast as acked"
    )
    parser.add_argument(
        "--database-url", default="", help="measure only this store ('null:' = no store, the HTTP baseline)"
    )
    parser.add_argument("--label", default="", help="name printed for --database-url")
    parser.add_argument(
        "--client",
        choices=["raw", "aiohttp"],
        default="raw",
        help="load generator: prepared requests on keep-alive sockets (default), or aiohttp's client",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.database_url, args.port)
        return
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
