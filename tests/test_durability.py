"""No recording lost: every callback answered 200 stays in the catalog, whatever happens.

Tencent retries a callback only a few times, so a 200 must mean "stored for good" and
anything we could not store must get another status. These tests put ingestion under
a storm of concurrent, duplicated, shuffled callbacks, kill the server in the middle of
a burst, and take the database away and give it back, and check what users then see.
"""

import asyncio
import itertools
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import anyio
import anyio.to_process
import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlmodel import col, select

from storage import InboxEntry
from storage.database import UNAVAILABLE_MESSAGE, Database
from storage.migrate import upgrade_to_head
from storage.unit_of_work import UnitOfWork
from tests.catalog_client import (
    BASE,
    CatalogClient,
    cut,
    make_settings,
    push,
    recording,
    screenshot,
    sign,
)
from tests.servers import free_port, serving

pytestmark = pytest.mark.anyio

# Grouping facts are whole multiples of STEP apart, shifted by the stream's index (below
# STEP), so no two streams' broadcasts start or end at the same second: the room list's
# order (newest first) then never falls back on ids, which depend on arrival order.
STEP = 600
FORMATS = ("hls", "mp4", "flv", "aac")
# Files are announced a little after they are closed (used only to order the events).
FILE_DELAY = 20


def stream_id_of(index: int) -> str:
    """Streams in pairs that share an anchor (`2121_u7`, `3377_u7`); every seventh has
    no bizid prefix at all."""
    if index % 7 == 6:
        return f"storm{index:04d}"
    return f"{2121 if index % 2 else 3377}_u{index // 2:04d}"


def stream_events(rng: random.Random, index: int) -> list[tuple[int, dict[str, Any]]]:
    """One stream's callbacks, each with the time Tencent would send it."""
    stream = stream_id_of(index)
    events: list[tuple[int, dict[str, Any]]] = []
    end = BASE + index + STEP * rng.randrange(200)
    sessions = rng.randint(1, 3)
    for number in range(sessions):
        # A gap of 0 continues the broadcast; any other exceeds the reconnect window.
        start = end + STEP * rng.choice((0, 1, 2, 6))
        end = start + STEP * rng.randint(1, 6)
        sequence = f"{number + 1:06d}" if rng.random() < 0.8 else ""
        if rng.random() < 0.9:
            events.append((start, push(stream, start, sequence)))
        # The last session may still be on air.
        if rng.random() < (0.7 if number == sessions - 1 else 0.95):
            extra = {"push_duration": str((end - start) * 1000)} if rng.random() < 0.5 else {}
            events.append((end, cut(stream, end, sequence, **extra)))
        for file_format in rng.sample(FORMATS, rng.randint(0, 3)):
            step = STEP * rng.randint(2, 4)
            for part, part_start in enumerate(range(start, end, step)):
                part_end = min(part_start + step, end)
                file_id = f"{stream}-{number}-{file_format}-{part}"
                event = recording(stream, file_id, part_start, part_end, file_format)
                events.append((part_end + FILE_DELAY, event))
        for shot in range(rng.randint(0, 2)):
            at = start + STEP * shot
            events.append((at, screenshot(stream, at)))
    return events


def storm_events(seed: int, streams: int) -> list[dict[str, Any]]:
    """Every distinct callback of `streams` streams, in the order Tencent would send them."""
    rng = random.Random(seed)
    timed = [event for index in range(streams) for event in stream_events(rng, index)]
    timed.sort(key=lambda item: item[0])  # stable: ties keep the order they were made in
    return [event for _, event in timed]


def stream_ids_of(events: Iterable[dict[str, Any]]) -> set[str]:
    return {event["stream_id"] for event in events}


def deliveries(events: Sequence[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The events shuffled, a third of them twice, each delivery signed (a retry may
    carry a later `t`)."""
    rng = random.Random(seed)
    again = rng.sample(list(events), len(events) // 3)
    signed = [sign(event) for event in events]
    signed += [sign(event, expires_in=rng.choice((600, 900, 1200))) for event in again]
    rng.shuffle(signed)
    return signed


async def deliver(
    http: httpx.AsyncClient,
    payloads: Sequence[dict[str, Any]],
    concurrency: int = 32,
    on_answer: Callable[[int | None], None] | None = None,
) -> list[int | None]:
    """POST every callback, `concurrency` at a time; each one's status, or None when the
    request got no answer (connection refused or cut). `on_answer` hears each as it comes."""
    limit = asyncio.Semaphore(concurrency)

    async def one(payload: dict[str, Any]) -> int | None:
        async with limit:
            try:
                status: int | None = (
                    await http.post("/callbacks/tencent", json=payload)
                ).status_code
            except httpx.TransportError:
                status = None
            if on_answer is not None:
                on_answer(status)
            return status

    return await asyncio.gather(*(one(payload) for payload in payloads))


async def reference_snapshot(
    database_url: str, events: Sequence[dict[str, Any]], stream_ids: Iterable[str]
) -> dict[str, Any]:
    """The catalog the same events make when sent one by one, in order, to a fresh database."""
    async with CatalogClient.started(make_settings(database_url)) as reference:
        await reference.send_all(events)
        return await reference.snapshot(stream_ids)


def reference_snapshot_in_this_process(
    database_url: str, events: list[dict[str, Any]], stream_ids: list[str]
) -> dict[str, Any]:
    return anyio.run(reference_snapshot, database_url, events, stream_ids)


async def reference_snapshot_on_another_core(
    database_url: str, events: Sequence[dict[str, Any]], stream_ids: Iterable[str]
) -> dict[str, Any]:
    """`reference_snapshot`, built by a worker process so that it runs beside the test's
    own work on a second core (ingestion in one process is bound by one core)."""
    return await anyio.to_process.run_sync(  # type: ignore[no-any-return]
        reference_snapshot_in_this_process,
        database_url,
        list(events),
        sorted(stream_ids),
        cancellable=True,
    )


async def test_a_commit_is_on_disk_before_a_callback_is_answered(catalog: CatalogClient) -> None:
    """What a write transaction runs with: a power cut just after a 200 loses nothing."""

    def settings(work: UnitOfWork) -> list[Any]:
        if catalog.database.is_sqlite:
            return [work.session.execute(text("PRAGMA synchronous")).scalar()]
        return [
            work.session.execute(text(f"SHOW {name}")).scalar()
            for name in ("fsync", "synchronous_commit")
        ]

    # SQLite's 2 is FULL: the WAL is synced at every commit (NORMAL, 1, may lose the last).
    assert await catalog.database.write(settings) == (
        [2] if catalog.database.is_sqlite else ["on", "on"]
    )


async def test_a_storm_of_concurrent_duplicated_callbacks_builds_the_same_catalog_as_one_by_one(
    catalog: CatalogClient, another_database_url: str
) -> None:
    events = storm_events(seed=20261101, streams=210)
    streams = stream_ids_of(events)
    assert len(events) >= 2000 and len(streams) >= 200
    assert {event["event_type"] for event in events} == {0, 1, 100, 200}
    sent = deliveries(events, seed=7)

    async def storm() -> dict[str, Any]:
        statuses = await deliver(catalog.http, sent)
        refused = [
            (status, payload)
            for status, payload in zip(statuses, sent, strict=True)
            if status != 200
        ]
        assert not refused, f"{len(refused)} of {len(sent)} not answered 200: {refused[:3]}"
        return await catalog.snapshot(streams)

    stormed, expected = await asyncio.gather(
        storm(), reference_snapshot_on_another_core(another_database_url, events, streams)
    )
    assert_same_catalog(stormed, expected)


def assert_same_catalog(seen: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal snapshots; otherwise name the first stream and the first room that differ."""
    if seen == expected:
        return
    streams = [
        name for name, stream in expected["streams"].items() if seen["streams"].get(name) != stream
    ]
    rooms = [
        index
        for index, (a, b) in enumerate(itertools.zip_longest(seen["rooms"], expected["rooms"]))
        if a != b
    ]
    report = [f"{len(streams)} streams and {len(rooms)} room list positions differ"]
    if streams:
        name = streams[0]
        report += [
            f"stream {name}:",
            f"  seen     {seen['streams'].get(name)}",
            f"  expected {expected['streams'][name]}",
        ]
    if rooms:
        at = rooms[0]
        report += [
            f"room {at} (of {len(seen['rooms'])} seen, {len(expected['rooms'])} expected):",
            f"  seen     {seen['rooms'][at : at + 1]}",
            f"  expected {expected['rooms'][at : at + 1]}",
        ]
    pytest.fail("\n".join(report), pytrace=False)


def covered(moment: int, broadcasts: list[dict[str, Any]]) -> bool:
    """Whether one of these broadcasts spans the moment (a Unix time)."""
    for broadcast in broadcasts:
        started = datetime.fromisoformat(broadcast["startedAt"]).timestamp()
        ended = broadcast["endedAt"]
        if started <= moment and (
            ended is None or moment <= datetime.fromisoformat(ended).timestamp()
        ):
            return True
    return False


async def missing_from(
    client: CatalogClient, events: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The events whose fact the catalog does not show: a recording file that
    `recordingFile(fileId)` does not find in its stream and a broadcast, or a push, cut-off
    or screenshot whose moment none of its stream's broadcasts spans."""
    limit = asyncio.Semaphore(8)

    async def shown(event: dict[str, Any]) -> bool:
        async with limit:
            if event["event_type"] == 100:
                found = (await client.data(FILE_QUERY, {"fileId": event["file_id"]}))[
                    "recordingFile"
                ]
                return (
                    found is not None
                    and found["stream"]["streamId"] == event["stream_id"]
                    and found["broadcast"] is not None
                )
            stream = await client.stream_catalog(event["stream_id"])
        moment = event["create_time" if event["event_type"] == 200 else "event_time"]
        return stream is not None and covered(
            moment, [edge["node"] for edge in stream["broadcasts"]["edges"]]
        )

    listed = list(events)
    found = await asyncio.gather(*(shown(event) for event in listed))
    return [event for event, ok in zip(listed, found, strict=True) if not ok]


FILE_QUERY = """query($fileId: String!) {
  recordingFile(fileId: $fileId) { stream { streamId } broadcast { startedAt } }
}"""


async def test_every_acknowledged_callback_survives_a_killed_server(
    catalog: CatalogClient, another_database_url: str, tmp_path: Path
) -> None:
    events = storm_events(seed=20261126, streams=40)
    streams = stream_ids_of(events)
    sent = [sign(event) for event in events]
    random.Random(11).shuffle(sent)

    # The test's events are dated weeks ago: rooms whose cut-off is missing stay live, as in
    # the in-process reference (make_settings).
    settings = {"LIVE_SILENCE_SECONDS": "0"}

    async with (
        serving(another_database_url, tmp_path, **settings) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=30) as http,
    ):
        answered = 0

        def kill_at_a_third(_status: int | None) -> None:
            nonlocal answered
            answered += 1
            if answered == len(sent) // 3:
                server.process.send_signal(signal.SIGKILL)

        statuses = await deliver(http, sent, on_answer=kill_at_a_third)
    assert set(statuses) <= {200, None}, "until the kill, every callback is answered 200"
    acknowledged = [e for e, status in zip(sent, statuses, strict=True) if status == 200]
    assert len(sent) // 3 <= len(acknowledged) < len(sent) - 32, "killed in the middle"

    async with (
        serving(another_database_url, tmp_path, **settings) as server,
        CatalogClient.at(server.base_url, another_database_url) as restarted,
    ):
        lost = await missing_from(restarted, acknowledged)
        assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged lost: {lost[:3]}"
        # Tencent retries what it got no 200 for; here everything is sent again.
        again = await deliver(restarted.http, [sign(event) for event in events])
        assert set(again) == {200}
        recovered = await restarted.snapshot(streams)

    await catalog.send_all(events)
    assert_same_catalog(recovered, await catalog.snapshot(streams))


@dataclass
class Outage:
    """A database the test can take away and give back (`begin`, `end`) without the app
    knowing, and a second fresh one of the same kind to build the reference catalog in."""

    url: str
    reference_url: str
    begin: Callable[[], Awaitable[None]]
    end: Callable[[], Awaitable[None]]
    # A stopped server answers nothing; a read-only SQLite file still serves reads.
    reads_fail: bool


def immutable_files_work(directory: Path) -> bool:
    """Whether `chattr +i` makes a file unwritable here, even for root (who ignores
    permissions): it needs CAP_LINUX_IMMUTABLE and a file system that has the flag."""
    probe = directory / "immutable-probe"
    probe.write_text("probe")
    if subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode:  # noqa: S603, S607
        return False
    try:
        with probe.open("a") as attempt:
            attempt.write("written anyway")
    except OSError:
        return True
    finally:
        subprocess.run(["chattr", "-i", str(probe)], check=True)  # noqa: S603, S607
    return False


def read_only_sqlite(directory: Path, template: Path) -> Iterator[Outage]:
    """A SQLite catalog made unwritable with `chattr +i` on the database and its WAL
    (root ignores file permissions), and writable again with `chattr -i`."""
    if shutil.which("chattr") is None or not immutable_files_work(directory):
        pytest.skip("cannot make a file unwritable for this user here (chattr +i)")
    path, reference = directory / "catalog.db", directory / "reference.db"
    shutil.copy(template, path)
    shutil.copy(template, reference)
    files = [str(path), f"{path}-wal"]

    async def chattr(flag: str) -> None:
        await anyio.run_process(["chattr", flag, *files])

    try:
        yield Outage(
            url=f"sqlite+aiosqlite:///{path}",
            reference_url=f"sqlite+aiosqlite:///{reference}",
            begin=lambda: chattr("+i"),
            end=lambda: chattr("-i"),
            reads_fail=False,
        )
    finally:
        subprocess.run(["chattr", "-i", *files], capture_output=True)  # noqa: S603, S607


def postgres_programs() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian's layout)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda program: int(program.parts[-3]) if program.parts[-3].isdigit() else 0,
    )
    if not found:
        pytest.fail(
            "no PostgreSQL server programs in /usr/lib/postgresql/*/bin (apt-get install "
            'postgresql), or deselect these tests with -m "not postgres"',
            pytrace=False,
        )
    return found[-1].parent


def stopped_postgres() -> Iterator[Outage]:
    """A PostgreSQL server of the test's own (initdb and pg_ctl in a temporary directory,
    on a free port), stopped with `pg_ctl stop -m immediate` (as a crash would) and
    started again. Never the machine's shared server, which other tests use."""
    programs = postgres_programs()
    # PostgreSQL refuses to run as root: run it as the postgres user when we are root.
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    directory = Path(tempfile.mkdtemp(prefix="replay-catalog-pg-"))
    if as_owner:
        shutil.chown(directory, "postgres", "postgres")
    data, port = directory / "data", free_port()
    pg_ctl = [*as_owner, str(programs / "pg_ctl"), "--pgdata", str(data), "--wait"]
    start = [*pg_ctl, "--log", str(directory / "server.log"), "start", "--options",
             f"-p {port} -k {directory} -c listen_addresses=127.0.0.1"]  # fmt: skip
    stop = [*pg_ctl, "stop", "--mode", "immediate"]
    server = f"postgresql+asyncpg://postgres@127.0.0.1:{port}"
    try:
        subprocess.run(  # noqa: S603
            [*as_owner, str(programs / "initdb"), "--pgdata", str(data), "--username",
             "postgres", "--auth", "trust", "--encoding", "UTF8", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(start, check=True, capture_output=True)  # noqa: S603

        async def prepare() -> None:
            admin = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
            await admin.execute("CREATE DATABASE catalog")
            await admin.execute("CREATE DATABASE reference")
            await admin.close()
            for name in ("catalog", "reference"):
                database = Database(f"{server}/{name}")
                await upgrade_to_head(database)
                await database.dispose()

        anyio.run(prepare)

        async def run(command: list[str]) -> None:
            await anyio.run_process(command)

        yield Outage(
            url=f"{server}/catalog",
            reference_url=f"{server}/reference",
            begin=lambda: run(stop),
            end=lambda: run(start),
            reads_fail=True,
        )
    finally:
        subprocess.run(stop, capture_output=True)  # noqa: S603 - stopped already is fine
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    if request.param == "sqlite":
        yield from read_only_sqlite(tmp_path, request.getfixturevalue("sqlite_template"))
    else:
        yield from stopped_postgres()


async def test_while_the_database_is_away_callbacks_get_503_and_once_back_200_without_restart(
    outage: Outage,
) -> None:
    events = storm_events(seed=20261127, streams=30)
    streams = stream_ids_of(events)
    sent = [sign(event) for event in events]
    random.Random(5).shuffle(sent)
    # Sent while the database is away, and retried once it is back.
    late = recording("2121_outage", "outage-file", BASE + 30, BASE + 90, "mp4")

    async with CatalogClient.started(make_settings(outage.url)) as catalog:
        a_third_answered = asyncio.Event()
        answered = 0

        def count(_status: int | None) -> None:
            nonlocal answered
            answered += 1
            if answered == len(sent) // 3:
                a_third_answered.set()

        async def take_the_database_away() -> None:
            await a_third_answered.wait()
            await outage.begin()

        statuses, _ = await asyncio.gather(
            deliver(catalog.http, sent, on_answer=count), take_the_database_away()
        )
        # Stored (200) or not (503, so that Tencent retries): never anything else.
        assert set(statuses) == {200, 503}, statuses
        acknowledged = [e for e, status in zip(sent, statuses, strict=True) if status == 200]
        known = {"streamId": acknowledged[0]["stream_id"]}

        started = time.monotonic()
        refused = await catalog.post_callback(sign(late))
        assert refused.status_code == 503, refused.text
        assert time.monotonic() - started < 5, "answered well within Tencent's 20 s"
        assert refused.headers["content-type"] == "application/json"
        assert refused.json() == {"code": 503, "message": UNAVAILABLE_MESSAGE}
        answer = await catalog.http.post(
            "/graphql",
            json={
                "query": "query($streamId: String!) { stream(streamId: $streamId) { streamId } }",
                "variables": known,
            },
        )
        # Not ready for callbacks either way (a read-only database included).
        assert (await catalog.http.get("/readyz")).status_code == 503
        if outage.reads_fail:
            assert answer.json()["errors"] == [
                {"message": UNAVAILABLE_MESSAGE, "locations": ANY, "path": ["stream"]}
            ]
            for leak in ("Traceback", "SELECT", "sqlalchemy", "asyncpg", "sqlite3"):
                assert leak not in answer.text
        else:  # the catalog can still be read
            assert answer.json() == {"data": {"stream": known}}

        await outage.end()
        # The same app, not restarted: the first callback is stored again.
        retried = await catalog.post_callback(sign(late))
        assert retried.status_code == 200, retried.text
        assert (await catalog.http.get("/readyz")).status_code == 200
        # Away and back again while nobody calls: every pooled connection is stale now,
        # and still the next callback (another retry) is stored.
        await outage.begin()
        await outage.end()
        assert (await catalog.post_callback(sign(late))).status_code == 200
        inbox = await catalog.database.scalars(
            select(InboxEntry).where(col(InboxEntry.stream_id) == late["stream_id"])
        )
        assert len(inbox) == 1, "the event sent during the outage is stored once"
        (broadcast,) = await catalog.broadcasts(late["stream_id"])
        assert [r["fileId"] for r in broadcast["recordings"]] == ["outage-file"]

        assert not await missing_from(catalog, acknowledged)
        # Tencent retries every callback that got no 200.
        unstored = [e for e, status in zip(sent, statuses, strict=True) if status != 200]
        assert set(await deliver(catalog.http, unstored)) == {200}
        recovered = await catalog.snapshot([*streams, late["stream_id"]])

    expected = await reference_snapshot(
        outage.reference_url, [*events, late], [*streams, late["stream_id"]]
    )
    assert_same_catalog(recovered, expected)


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
# Without the response cache a page's first statement is one of its own reads (a lookup
# straight through asyncpg); with it, the catalog version's (through SQLAlchemy).
@pytest.mark.parametrize("cache_entries", [0, 512], ids=["uncached", "cached"])
async def test_pages_are_answered_after_postgresql_ended_every_session_of_the_service(
    catalog: CatalogClient, database_url: str, cache_entries: int
) -> None:
    await catalog.send(recording("2121_dropped", "dropped-file", BASE, BASE + 600))
    settings = make_settings(database_url, response_cache_entries=cache_entries)
    async with CatalogClient.started(settings) as reading:
        before = await reading.all_rooms()
        admin = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            # A restart, a failover or an administrator ends every session the pool
            # holds; the page asked for at once, while asyncpg may still be reading
            # why (several times: that moment is a race).
            for _ in range(10):
                ended = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                assert ended > 0
                assert await reading.all_rooms() == before
        finally:
            await admin.close()


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_pages_whose_clients_leave_midway_give_their_connections_back(
    catalog: CatalogClient, database_url: str
) -> None:
    for index in range(10):
        start = BASE + index * 1000
        await catalog.send(recording(f"2121_left{index}", f"left{index}", start, start + 600))
    uncached = make_settings(database_url, response_cache_entries=0)
    async with CatalogClient.started(uncached) as reading:
        expected = await reading.all_rooms()
        pages = []
        for index in range(40):  # clients leaving at every moment of a page's reads
            page = asyncio.create_task(reading.all_rooms())
            await asyncio.sleep(index * 0.0005)
            page.cancel()
            pages.append(page)
        await asyncio.gather(*pages, return_exceptions=True)

        pools = [engine.pool for engine in reading.database.sync_engines]
        assert [pool.checkedout() for pool in pools] == [0] * len(pools)  # type: ignore[attr-defined]
        assert await reading.all_rooms() == expected
