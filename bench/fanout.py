"""Subscriptions under load: delay across replicas, and ingestion beside many subscribers.

    .venv/bin/python bench/fanout.py [--events 300] [--postgres postgresql://postgres@127.0.0.1/test]
    .venv/bin/python bench/fanout.py --subscriptions 0,400,2000 [--per-websocket 100] [--seconds 15]

Delay (the default): creates a fresh PostgreSQL database, starts two `replay-catalog serve`
replicas on it, subscribes to `roomsChanged` on the second (graphql-transport-ws), then posts
push callbacks for new streams to the first, one at a time. For each event it measures how
long the callback took to be answered (the floor: nothing can reach a subscriber before the
transaction commits) and how long until the subscriber on the other replica had it. Prints
p50/p99/max and writes them to bench/FANOUT.md.

Ingestion beside subscribers (`--subscriptions`): for each count, a fresh `serve` on a fresh
SQLite file; another process opens that many anonymous `roomsChanged` subscriptions, 100 per
WebSocket (Strawberry's limit per connection), and reads everything they are sent, while
this one posts signed recording callbacks (each changes a room, so every subscriber is told)
from several connections at once for a fixed time. Prints callbacks/s, what the subscribers
received and the server's RSS, and writes them to bench/SUBSCRIBERS.md.
"""

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from pathlib import Path

import asyncpg
import httpx
import websockets
from run import (
    CLI,
    KEY,
    file_start_time,
    free_port,
    recording,
    service_env,
    signed,
    start,
)

BENCH = Path(__file__).parent
ROOMS_CHANGED = "subscription { roomsChanged { room { kind stream { streamId } } } }"
# What an app's room list asks of each change.
ROOMS_CHANGED_APP = """subscription { roomsChanged { broadcastId room {
  kind playbackUrl anchor { userId nickname avatarUrl } stream { streamId isLive }
  broadcast { id startedAt endedAt durationSeconds recordings { fileId format videoUrl } }
} } }"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def wait_for_subscription(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        for _ in range(200):
            page = (await http.get("/metrics")).text
            if re.search(r"^replay_catalog_subscriptions 1\.0$", page, re.MULTILINE):
                return
            await asyncio.sleep(0.05)
    raise SystemExit("the subscription did not start")


async def measure(first: str, second: str, events: int) -> tuple[list[float], list[float], int]:
    """Per event: seconds until the callback's 200, and until the other replica's subscriber."""
    received: dict[str, float] = {}
    websocket_url = second.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(websocket_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": ROOMS_CHANGED}
        await ws.send(json.dumps({"id": "rooms", "type": "subscribe", "payload": payload}))
        await wait_for_subscription(second)

        async def listen() -> None:
            async for text in ws:
                message = json.loads(text)
                if message.get("type") == "next":
                    room = message["payload"]["data"]["roomsChanged"]["room"]
                    if room is not None:
                        received.setdefault(room["stream"]["streamId"], time.perf_counter())

        listener = asyncio.create_task(listen())
        answered: list[float] = []
        delivered: list[float] = []
        sent: dict[str, float] = {}
        async with httpx.AsyncClient(base_url=first) as http:
            for index in range(events):
                stream = f"2121_fanout{index:05d}"
                event = signed(
                    {"event_type": 1, "stream_id": stream, "event_time": int(time.time()),
                     "sequence": f"s{index}"}
                )  # fmt: skip
                sent[stream] = time.perf_counter()
                answer = await http.post("/callbacks/tencent", json=event)
                assert answer.status_code == 200, answer.text
                answered.append(time.perf_counter() - sent[stream])
                await asyncio.sleep(0.01)  # a steady trickle, not a burst
        await asyncio.sleep(2)
        listener.cancel()
        for stream, at in sent.items():
            if stream in received:
                delivered.append(received[stream] - at)
        return answered, delivered, len(sent) - len(delivered)


async def drop_database(server: str, database_url: str) -> None:
    admin = await asyncpg.connect(server)
    try:
        name = database_url.rsplit("/", 1)[1]
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def fresh_database(server: str) -> str:
    name = f"replay_catalog_fanout_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name


@dataclass
class Received:
    """What one process's subscriptions were sent."""

    changes: int = 0  # `next` messages with data
    errors: int = 0  # `next` or `error` messages with errors (refused, ended as too slow)
    completed: int = 0


def read_subscriptions(
    websocket_url: str,
    count: int,
    per_websocket: int,
    stop: Event,
    out: "multiprocessing.Queue[Received]",
) -> None:
    """Open `count` roomsChanged subscriptions, `per_websocket` on each WebSocket, and read
    everything until `stop` is set; put the tally in `out` (runs in a process of its own)."""
    received = Received()

    async def one_websocket(share: int) -> None:
        async with websockets.connect(
            websocket_url, subprotocols=["graphql-transport-ws"], max_size=None
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            for key in range(share):
                payload = {"query": ROOMS_CHANGED_APP}
                await ws.send(json.dumps({"id": str(key), "type": "subscribe", "payload": payload}))
            async for text in ws:
                # Counting without parsing keeps this reader cheap (Strawberry's JSON is compact).
                if '"errors"' in text or '"type":"error"' in text:
                    received.errors += 1
                elif '"type":"next"' in text:
                    received.changes += 1
                elif '"type":"complete"' in text:
                    received.completed += 1

    async def read_until_stopped() -> None:
        shares = [min(per_websocket, count - start) for start in range(0, count, per_websocket)]
        readers = [asyncio.create_task(one_websocket(share)) for share in shares if share]
        await asyncio.to_thread(stop.wait)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    asyncio.run(read_until_stopped())
    out.put(received)


def wait_for_subscriptions(base_url: str, count: int, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=base_url) as http:
        while time.monotonic() < deadline:
            page = http.get("/metrics").text
            found = re.search(r"^replay_catalog_subscriptions (\S+)$", page, re.MULTILINE)
            if found and float(found.group(1)) >= count:
                return
            time.sleep(0.2)
    raise SystemExit(f"{count} subscriptions did not open within {seconds:.0f} s")


async def post_callbacks(
    base_url: str, seconds: float, concurrency: int, rate: float | None = None
) -> tuple[int, list[float]]:
    """Signed recording callbacks from `concurrency` connections for `seconds`, as fast as
    they are answered or `rate` a second in all: how many were answered 200 within that
    time, and their latencies."""
    numbers = itertools.count()
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds

    async def worker(http: httpx.AsyncClient) -> None:
        while True:
            index = next(numbers)
            if rate is not None:
                await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
            start_time = file_start_time(index)
            stream = f"2121_load{index % 500:04d}"
            event = signed(recording(stream, f"load{index}", start_time, start_time + 59, "mp4"))
            sent = time.perf_counter()
            answer = await http.post("/callbacks/tencent", json=event)
            assert answer.status_code == 200, answer.text
            if time.perf_counter() <= deadline:
                latencies.append(time.perf_counter() - sent)

    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        workers = [asyncio.create_task(worker(http)) for _ in range(concurrency)]
        await asyncio.sleep(seconds)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return len(latencies), latencies


def resident_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else float("nan")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used (other load on the machine aside)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class LoadRun:
    subscriptions: int
    callbacks_per_second: float
    p50_ms: float
    p99_ms: float
    rss_idle_mb: float
    rss_loaded_mb: float
    received: Received
    callbacks: int
    cpu_seconds: float  # the server's, while callbacks were posted


def ingestion_beside(subscriptions: int, args: argparse.Namespace) -> LoadRun:
    """Callback throughput of a fresh `serve` while `subscriptions` anonymous subscribers read."""
    work = Path(tempfile.mkdtemp(prefix="replay-fanout-load-"))
    port = free_port()
    env = {
        **service_env(f"sqlite+aiosqlite:///{work / 'catalog.db'}"),
        "RECONCILE_INTERVAL_SECONDS": "0",
        # One bench process stands for many clients: lift the per-address cap.
        "SUBSCRIPTIONS_PER_CLIENT": str(max(subscriptions, 1)),
    }
    server = start([*CLI, "serve", "--port", str(port)], env, port)
    base_url = f"http://127.0.0.1:{port}"
    processes = multiprocessing.get_context("spawn")
    stop = processes.Event()
    out: multiprocessing.Queue[Received] = processes.Queue()
    reader = None
    try:
        wait_for_subscriptions(base_url, 0)
        if subscriptions:
            reader = processes.Process(
                target=read_subscriptions,
                args=(base_url.replace("http://", "ws://") + "/graphql", subscriptions,
                      args.per_websocket, stop, out),
            )  # fmt: skip
            reader.start()
            wait_for_subscriptions(base_url, subscriptions)
        rss_idle = resident_mb(server.pid)
        cpu_before = cpu_seconds(server.pid)
        callbacks, latencies = asyncio.run(
            post_callbacks(base_url, args.seconds, args.concurrency, args.rate)
        )
        cpu_used = cpu_seconds(server.pid) - cpu_before
        rss_loaded = resident_mb(server.pid)
        time.sleep(3)  # what is still on its way to the subscribers
        received = Received()
        if reader is not None:
            stop.set()
            received = out.get(timeout=60)
            reader.join(timeout=30)
    finally:
        stop.set()
        if reader is not None and reader.is_alive():
            reader.kill()
        server.kill()
        server.wait()
    latencies = latencies or [float("nan")]
    return LoadRun(
        subscriptions=subscriptions,
        callbacks_per_second=callbacks / args.seconds,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        rss_idle_mb=rss_idle,
        rss_loaded_mb=rss_loaded,
        received=received,
        callbacks=callbacks,
        cpu_seconds=cpu_used,
    )


def measure_load(args: argparse.Namespace) -> None:
    counts = [int(n) for n in args.subscriptions.split(",")]
    os.chdir(tempfile.mkdtemp(prefix="replay-fanout-"))  # no stray .env; the code installed
    runs = []
    for count in counts:
        run = ingestion_beside(count, args)
        print(run, flush=True)
        runs.append(run)
    quiet = next((run.callbacks_per_second for run in runs if run.subscriptions == 0), None)
    lines = [
        "# Ingestion beside many subscribers",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/fanout.py --subscriptions "
        f"{args.subscriptions}` on {os.cpu_count()} cores, Python {platform.python_version()}; "
        "for each count a fresh `replay-catalog serve` on a fresh SQLite file; a second "
        f"process holds that many anonymous `roomsChanged` subscriptions, {args.per_websocket} "
        f"per WebSocket, and reads everything; signed recording callbacks (each changes a room) "
        f"posted from {args.concurrency} connections for {args.seconds:.0f} s, "
        + (f"{args.rate:g} a second in all." if args.rate else "as fast as they are answered."),
        "",
        "| subscriptions | callbacks/s | ratio to quiet | p50 ms | p99 ms | changes received "
        "| share of changes delivered | subscriptions ended with an error "
        "| server CPU ms per callback | RSS open, idle (MB) | RSS after load (MB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        expected = run.subscriptions * run.callbacks
        share = f"{run.received.changes / expected:.2f}" if expected else "-"
        ratio = f"{run.callbacks_per_second / quiet:.2f}" if quiet else "-"
        lines.append(
            f"| {run.subscriptions} | {run.callbacks_per_second:.1f} | {ratio} | "
            f"{run.p50_ms:.1f} | {run.p99_ms:.1f} | {run.received.changes} | {share} | "
            f"{run.received.errors} | {run.cpu_seconds * 1000 / max(run.callbacks, 1):.1f} | "
            f"{run.rss_idle_mb:.0f} | {run.rss_loaded_mb:.0f} |"
        )
    report = "\n".join(lines) + "\n"
    (BENCH / args.report).write_text(report)
    print(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--subscriptions", help="comma-separated counts: measure ingestion beside them instead"
    )
    parser.add_argument("--per-websocket", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--rate", type=float, help="callbacks a second in all (default: as fast as answered)"
    )
    parser.add_argument("--report", default="SUBSCRIBERS.md", help="file in bench/ to write")
    args = parser.parse_args()
    if args.subscriptions:
        measure_load(args)
        return
    database_url = asyncio.run(fresh_database(args.postgres))
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CALLBACK_KEY": KEY,
        "LOG_LEVEL": "WARNING",
        "RECONCILE_INTERVAL_SECONDS": "0",
    }
    cli = [sys.executable, "-m", "replay_catalog.cli"]
    subprocess_cwd = tempfile.mkdtemp(prefix="replay-fanout-")
    os.chdir(subprocess_cwd)
    replicas = []
    try:
        for _ in range(2):
            port = free_port()
            replicas.append((start([*cli, "serve", "--port", str(port)], env, port), port))
            time.sleep(1)  # the second waits for the first's migrations anyway
        first, second = (f"http://127.0.0.1:{port}" for _, port in replicas)
        answered, delivered, missing = asyncio.run(measure(first, second, args.events))
    finally:
        for process, _ in replicas:
            process.kill()
            process.wait()
        asyncio.run(drop_database(args.postgres, database_url))
    lines = [
        "# Fan-out delay: callback on one replica to a subscriber on another",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/fanout.py` on "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; PostgreSQL "
        f"(LISTEN/NOTIFY), two `replay-catalog serve` replicas on loopback; {args.events} push "
        "callbacks for new streams posted one at a time to the first, `roomsChanged` "
        "subscribed on the second.",
        "",
        "| from posting the callback to … | events | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, values in (
        ("its 200 on the first replica (the floor)", answered),
        ("the subscriber on the second replica", delivered),
    ):
        lines.append(
            f"| {label} | {len(values)} | {statistics.median(values) * 1000:.1f} | "
            f"{percentile(values, 0.99) * 1000:.1f} | {max(values) * 1000:.1f} |"
        )
    lines += ["", f"Events that never reached the subscriber: {missing}."]
    report = "\n".join(lines) + "\n"
    (BENCH / "FANOUT.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
