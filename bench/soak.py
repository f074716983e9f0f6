"""Soak the service with mixed load for a while and count every request that failed.

    .venv/bin/python bench/soak.py [--seconds 60] [--database-url URL]
                                   [--callback-concurrency 16] [--query-concurrency 4]

Starts `replay-catalog serve` on loopback (a fresh SQLite file by default; with
`--database-url`, that database, which it adds to), loads a small catalog through the
callback route, then for `--seconds` drives it from this process, a separate one:

  * signed callbacks, as Tencent sends them: new streams going live, recording files
    (HLS and MP4 parts), screenshots, cut-offs, and retries of events already sent;
  * room-list queries (`rooms(first: 20)` with anchor, stream, broadcast, recordings).

It reports callbacks/s, queries/s, p50/p99 latency per kind and the errors (any status
but 200, a GraphQL error, or no answer within Tencent's 20 s; the goal is zero), then
checks that a sample of the recording files answered 200 are in the catalog. The
results are printed and appended to bench/SOAK.md with the machine and the date.
"""

import argparse
import asyncio
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from run import BASE, KEY, ROOM_LIST, catalog_events, free_port, recording, signed, start

BENCH = Path(__file__).parent
# Tencent gives up on a callback after 20 seconds and retries it: slower is a failure.
TENCENT_TIMEOUT_SECONDS = 20
# Soak streams start after the preloaded catalog's, a minute apart (some 38,000 of them
# before the present: the service quarantines times more than a day ahead of it).
SOAK_EPOCH = BASE + 3 * 86400
PART_SECONDS = 600
# The service as deployed, minus what would add work the soak does not measure.
SERVICE_SETTINGS = {
    "CALLBACK_KEY": KEY,
    "LOG_LEVEL": "WARNING",
    "ACCESS_LOG": "false",  # no line per request on stdout
    "RECONCILE_INTERVAL_SECONDS": "0",  # no Tencent API to reconcile against
}


@dataclass
class Tally:
    """Latencies and failures of one kind of request."""

    requests: int = 0
    latencies: list[float] = field(default_factory=list)  # of the answered ones
    errors: int = 0
    examples: list[str] = field(default_factory=list)

    def fail(self, why: str) -> None:
        self.errors += 1
        if len(self.examples) < 3:
            self.examples.append(why)

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


@dataclass
class LiveStream:
    stream_id: str
    start: int
    parts: int = 0

    @property
    def sequence(self) -> str:
        """Tencent's `sequence`, the same on the push and the cut-off of one session."""
        return f"{self.start:x}"


class Traffic:
    """An endless, deterministic stream of callbacks like Tencent's for many anchors:
    streams go live, record HLS and MP4 parts and screenshots, and end; some callbacks
    are delivered twice."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.live: list[LiveStream] = []
        self.streams = 0
        self.sent: list[dict[str, Any]] = []

    def next_event(self) -> tuple[str, dict[str, Any]]:
        roll = self.rng.random()
        if roll < 0.1 and self.sent:
            return "retry", self.rng.choice(self.sent)
        if roll < 0.25 or not self.live:
            kind, event = "push", self._new_stream()
        else:
            kind, event = self._continue(self.rng.choice(self.live))
        self.sent.append(event)
        return kind, event

    def _new_stream(self) -> dict[str, Any]:
        self.streams += 1
        stream = LiveStream(f"2121_soak{self.streams:06d}", SOAK_EPOCH + self.streams * 61)
        self.live.append(stream)
        return {"event_type": 1, "stream_id": stream.stream_id, "event_time": stream.start,
                "sequence": stream.sequence}  # fmt: skip

    def _continue(self, stream: LiveStream) -> tuple[str, dict[str, Any]]:
        roll = self.rng.random()
        now = stream.start + stream.parts * PART_SECONDS
        if roll < 0.15 and stream.parts:
            self.live.remove(stream)
            return "cut-off", {
                "event_type": 0, "stream_id": stream.stream_id, "event_time": now,
                "sequence": stream.sequence,
                "push_duration": str((now - stream.start) * 1000),
            }  # fmt: skip
        if roll < 0.3:
            at = now + self.rng.randrange(PART_SECONDS)
            return "screenshot", {
                "event_type": 200, "stream_id": stream.stream_id, "create_time": at,
                "pic_url": f"/shots/{stream.stream_id}-{at}.jpg",
                "pic_full_url": f"http://1252033264.vod2.myqcloud.com/shots/{stream.stream_id}-{at}.jpg",
            }  # fmt: skip
        stream.parts += 1
        fmt = self.rng.choice(("hls", "mp4"))
        file_id = f"{stream.stream_id}-{stream.parts}-{fmt}"
        return "file", recording(stream.stream_id, file_id, now, now + PART_SECONDS, fmt)


class Soak:
    def __init__(self, http: httpx.AsyncClient, seconds: float) -> None:
        self.http = http
        self.deadline = time.monotonic() + seconds
        self.traffic = Traffic(seed=20261126)
        self.tallies: dict[str, Tally] = defaultdict(Tally)
        self.stored_files: list[str] = []
        # The machine's 1-minute load average when the soak began (other work skews it).
        self.load_before = 0.0

    async def send_callbacks(self) -> None:
        while time.monotonic() < self.deadline:
            kind, event = self.traffic.next_event()
            self.tallies[kind].requests += 1
            began = time.perf_counter()
            try:
                response = await self.http.post("/callbacks/tencent", json=signed(event))
            except httpx.HTTPError as failure:
                self.tallies[kind].fail(f"{type(failure).__name__}: {failure}")
                continue
            self.tallies[kind].latencies.append(time.perf_counter() - began)
            if response.status_code != 200:
                self.tallies[kind].fail(f"{response.status_code} {response.text[:200]}")
            elif kind == "file":
                self.stored_files.append(event["file_id"])

    async def list_rooms(self) -> None:
        tally = self.tallies["room list"]
        while time.monotonic() < self.deadline:
            tally.requests += 1
            began = time.perf_counter()
            try:
                response = await self.http.post("/graphql", json={"query": ROOM_LIST})
            except httpx.HTTPError as failure:
                tally.fail(f"{type(failure).__name__}: {failure}")
                continue
            tally.latencies.append(time.perf_counter() - began)
            if response.status_code != 200 or "errors" in response.json():
                tally.fail(f"{response.status_code} {response.text[:200]}")

    async def lost_files(self, sample: int) -> tuple[int, list[str]]:
        """How many of the acknowledged files were checked, and those not in the catalog."""
        chosen = random.Random(1).sample(self.stored_files, min(sample, len(self.stored_files)))
        lost = []
        for file_id in chosen:
            response = await self.http.post("/graphql", json={
                "query": "query($f: String!) { recordingFile(fileId: $f) { fileId } }",
                "variables": {"f": file_id},
            })  # fmt: skip
            if response.json()["data"]["recordingFile"] is None:
                lost.append(file_id)
        return len(chosen), lost


async def soak(
    base_url: str, args: argparse.Namespace
) -> tuple[Soak, float, tuple[int, list[str]]]:
    limits = httpx.Limits(max_connections=args.callback_concurrency + args.query_concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=TENCENT_TIMEOUT_SECONDS, limits=limits
    ) as http:
        for event in catalog_events(args.streams):
            response = await http.post("/callbacks/tencent", json=signed(event))
            response.raise_for_status()
        run = Soak(http, args.seconds)
        run.load_before = os.getloadavg()[0]
        began = time.monotonic()
        await asyncio.gather(
            *(run.send_callbacks() for _ in range(args.callback_concurrency)),
            *(run.list_rooms() for _ in range(args.query_concurrency)),
        )
        elapsed = time.monotonic() - began
        return run, elapsed, await run.lost_files(args.durability_sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="how long to soak")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--callback-concurrency", type=int, default=16)
    parser.add_argument("--query-concurrency", type=int, default=4)
    parser.add_argument("--streams", type=int, default=200, help="streams loaded beforehand")
    parser.add_argument("--durability-sample", type=int, default=300,
                        help="acknowledged files looked up afterwards")  # fmt: skip
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="replay-soak-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{work / 'soak.db'}"
    port = free_port()
    env = {**os.environ, **SERVICE_SETTINGS, "DATABASE_URL": database_url}
    cli = [sys.executable, "-m", "replay_catalog.cli"]
    service = start([*cli, "serve", "--port", str(port)], env, port)
    try:
        run, elapsed, (checked, lost) = asyncio.run(soak(f"http://127.0.0.1:{port}", args))
    finally:
        service.terminate()
        service.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    report(
        args, database_url, asyncio.run(database_version(database_url)), run, elapsed, checked, lost
    )


def machine() -> str:
    """Cores, processor, system and Python, for the record."""
    models = {
        line.partition(":")[2].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    }
    processor = ", ".join(sorted(models)) or platform.machine()
    return (
        f"{os.cpu_count()} cores ({processor}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


async def database_version(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        return sqlite3.sqlite_version
    connection = await asyncpg.connect(make_url(database_url).set(drivername="postgresql")
                                       .render_as_string(hide_password=False))  # fmt: skip
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def report(
    args: argparse.Namespace,
    database_url: str,
    version: str,
    run: Soak,
    elapsed: float,
    checked: int,
    lost: list[str],
) -> None:
    database = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    callbacks = [kind for kind in run.tallies if kind != "room list"]
    everything = Tally()
    for kind in callbacks:
        everything.requests += run.tallies[kind].requests
        everything.latencies += run.tallies[kind].latencies
        everything.errors += run.tallies[kind].errors
    rows = [("callbacks, all", everything), ("room-list queries", run.tallies["room list"])]
    rows += [(f"callbacks: {kind}", run.tallies[kind]) for kind in sorted(callbacks)]
    lines = [
        f"## {database}, {datetime.now(UTC):%Y-%m-%d %H:%M UTC}",
        "",
        f"`bench/soak.py --seconds {args.seconds:g}` on {machine()}, {database} {version}; "
        f"{args.callback_concurrency} callback senders and {args.query_concurrency} "
        f"room-list readers on loopback for {elapsed:.1f} s after loading {args.streams} "
        f"streams; the server and this client share the machine (1-minute load average "
        f"{run.load_before:.1f} when the soak began).",
        "",
        "| kind | requests | per second | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, tally in rows:
        lines.append(
            f"| {label} | {tally.requests:,} | {tally.requests / elapsed:,.1f} | "
            f"{tally.percentile(0.5):.1f} | {tally.percentile(0.99):.1f} | {tally.errors} |"
        )
    lines += [
        "",
        f"Errors are any status but 200, a GraphQL error, or no answer within "
        f"{TENCENT_TIMEOUT_SECONDS} s. Afterwards {checked} of the "
        f"{len(run.stored_files):,} recording files answered 200 were looked up: "
        f"{len(lost)} missing.",
    ]
    for label, tally in rows:
        for example in tally.examples:
            lines.append(f"- {label}: {example}")
    section = "\n".join(lines) + "\n"
    results = BENCH / "SOAK.md"
    if not results.exists():
        results.write_text(
            "# Soak results\n\nAppended by `bench/soak.py`, newest last. Every error is a "
            "callback Tencent would have to retry or a room list an app did not get.\n"
        )
    with results.open("a") as out:
        out.write("\n" + section)
    print(section)


if __name__ == "__main__":
    main()
