"""Delay from a callback on one replica to a subscriber on another, on PostgreSQL.

    .venv/bin/python bench/fanout.py [--events 300] [--postgres postgresql://postgres@127.0.0.1/test]

Creates a fresh PostgreSQL database, starts two `replay-catalog serve` replicas on
it, subscribes to `roomsChanged` on the second (graphql-transport-ws), then posts
push callbacks for new streams to the first, one at a time. For each event it
measures how long the callback took to be answered (the floor: nothing can reach a
subscriber before the transaction commits) and how long until the subscriber on the
other replica had it. Prints p50/p99/max and writes them to bench/FANOUT.md.
"""

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import websockets
from run import KEY, free_port, signed, start

BENCH = Path(__file__).parent
ROOMS_CHANGED = "subscription { roomsChanged { room { kind stream { streamId } } } }"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
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
