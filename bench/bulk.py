"""Fill a fresh PostgreSQL database with a realistic catalog of N recording files, fast.

    .venv/bin/python bench/bulk.py --files 1000000 [--database NAME] [--replace]
    .venv/bin/python bench/bulk.py --verify [--files 400] [--keep]

The catalog: 4 recording files per broadcast (one HLS file and three MP4 parts cut
by `record_interval`, or, after a break in the push, two HLS parts and two MP4
parts), 5 broadcasts per stream (so 50,000 streams at 1,000,000 files), one
screenshot per broadcast, push and cut-off events with Tencent's `sequence`, one
live room per 200 streams (a few hundred at 1,000,000 files), anchor profiles
owning half the streams (placeholder anchors for the others), some featured and
titled replays and some hidden ones. Ended broadcasts end one every minute or so
before 2026-11-01; live ones started within the last two hours.

Going through the callback route would take hours at this size, so the rows are
written directly with COPY, but derived the way ingestion derives them: each
callback body goes through the live parser (`tencent.parse_callback`) and the same
fact rows (`resolvers.ingestion.fact_values`), each stream's facts through the same
grouping (`group_broadcasts`, `shaped_columns`, `Broadcast.place_in_room_list`)
with the settings from the environment (`RECONNECT_WINDOW_SECONDS`,
`LIVE_SILENCE_SECONDS`), and curation as `curate_broadcast` applies it. The
database is created by the script and migrated by `replay-catalog migrate`;
foreign keys are checked once after the load, sequences moved past the ids used,
tables clustered in id order (as rows inserted over time lie) and analyzed.
Inbox entries are not written.

`--verify` builds a small catalog both ways, through the callback route and the
admin mutations of a running `replay-catalog serve` and through COPY, and
compares what GraphQL answers (every page of the room list, public and admin,
every stream's broadcasts, every anchor, every recording file; ids left out) and
every stored row (natural keys instead of ids, derived columns included). It
exits with status 1 on any difference.
"""

import argparse
import asyncio
import base64
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import httpx
from fanout import drop_database
from run import BASE, KEY, free_port, recording, signed, start

import tencent
from domain.grouping import FileFact, GroupingRules, PushFact, ScreenshotFact, group_broadcasts
from domain.times import utc_now
from replay_catalog.settings import Settings
from resolvers.ingestion import fact_values
from resolvers.regrouping import shaped_columns
from storage import Anchor, Broadcast, PushEvent, RecordingFile, Screenshot, Stream
from storage.anchors import placeholder_user_id
from storage.database import table_of

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
ADMIN_TOKEN = "bench-admin-token"  # noqa: S105
FILES_PER_BROADCAST = 4
BROADCASTS_PER_STREAM = 5
# The newest ended broadcast ends a day before BASE, so every stream's past is well
# behind its live broadcast, whenever the catalog is built.
LAST_END = BASE - 86_400
TABLES: tuple[Any, ...] = (Anchor, Stream, Broadcast, PushEvent, RecordingFile, Screenshot)
# Broadcast g's facts have ids g * slots + 1 … g * slots + slots, so ids grow with time as
# they do when callbacks arrive (with gaps, as rows deleted by regrouping leave).
SLOTS: dict[type, int] = {PushEvent: 4, RecordingFile: 4, Screenshot: 2}


@dataclass(frozen=True)
class Size:
    """How big the catalog is, and how often things happen in it."""

    files: int

    @property
    def broadcasts(self) -> int:
        return max(1, self.files // FILES_PER_BROADCAST)

    @property
    def streams(self) -> int:
        return max(1, round(self.broadcasts / BROADCASTS_PER_STREAM))

    @property
    def live_every(self) -> int:
        return min(200, max(2, self.streams // 4))

    @property
    def featured_every(self) -> int:
        return max(10, self.broadcasts // 50)

    @property
    def hidden_every(self) -> int:
        return max(15, self.broadcasts // 100)

    @property
    def step(self) -> int:
        """Seconds between the ends of two broadcasts: a stream's next broadcast starts
        long after the reconnect window of its last."""
        return max(60, math.ceil(8_000 / self.streams))


@dataclass
class PlannedBroadcast:
    number: int  # g: its place in time among all broadcasts, and its id - 1
    started_at: int
    payloads: list[dict[str, Any]]
    live: bool = False
    featured: bool = False
    hidden: bool = False
    title: str | None = None


@dataclass
class PlannedStream:
    index: int
    stream_id: str
    owner: str | None  # the user id of the anchor profile that claims it, if any
    broadcasts: list[PlannedBroadcast] = field(default_factory=list)

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return [p for b in self.broadcasts for p in b.payloads]


def stream_name(index: int) -> str:
    return f"2121_s{index:06d}"


def owner_of(index: int) -> str | None:
    """Streams 4q and 4q+1 belong to the profile user{q}; the others keep placeholders."""
    return f"user{index // 4:06d}" if index % 4 < 2 else None


def profile(user_id: str) -> dict[str, str]:
    number = int(user_id[4:])
    return {
        "nickname": f"Anchor {number}",
        "avatarUrl": f"https://avatars.example.com/{user_id}.jpg",
    }


def push(stream: str, event_type: int, at: int, sequence: str, pushed: int = 0) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_type": event_type, "stream_id": stream, "channel_id": stream,
        "event_time": at, "sequence": sequence, "app": "push.example.com", "appname": "live",
    }  # fmt: skip
    if event_type == tencent.EVENT_PUSH_CUT_OFF:
        event.update(push_duration=pushed * 1000, errcode=1, errmsg="recv rtmp deleteStream")
    return event


def screenshot(stream: str, at: int) -> dict[str, Any]:
    return {
        "event_type": tencent.EVENT_SCREENSHOT, "stream_id": stream, "create_time": at,
        "pic_full_url": f"http://1252033264.picsh.myqcloud.com/live/{stream}/{at}-640x360.jpg",
        "width": 640, "height": 360,
    }  # fmt: skip


def sessions_and_files(
    stream: str, g: int, start: int, sessions: list[tuple[int, int | None]]
) -> list[dict[str, Any]]:
    """Push events for the sessions (end None: still on air), and their recording files:
    an HLS file per ended session, MP4 parts cut every 30 minutes (also while on air)."""
    events: list[dict[str, Any]] = []
    for number, (begin, end) in enumerate(sessions):
        sequence = f"{stream}-{g}-{number}"
        events.append(push(stream, tencent.EVENT_PUSH_STARTED, begin, sequence))
        if end is not None:
            events.append(push(stream, tencent.EVENT_PUSH_CUT_OFF, end, sequence, end - begin))
            events.append(recording(stream, f"{stream}-{g}-{number}-h", begin + 1, end, "hls"))
        part_start, parts_end = begin + 1, end if end is not None else begin + 1801
        part = 0
        while part_start < parts_end:
            part_end = min(part_start + 1800, parts_end)
            file_id = f"{stream}-{g}-{number}-m{part}"
            events.append(recording(stream, file_id, part_start, part_end, "mp4"))
            part_start, part = part_end, part + 1
    events.append(screenshot(stream, start + 10))
    return events


def plan_broadcast(size: Size, stream: str, g: int, live_slot: int | None, now: int) -> Any:
    if live_slot is not None:
        # On air for about 90 minutes, after a reconnect: an ended session (HLS and two
        # MP4 parts), then one without a cut-off that has recorded an MP4 part so far.
        start = now - 5_400 - live_slot * 7
        sessions: list[tuple[int, int | None]] = [(start, start + 2_400), (start + 2_460, None)]
        events = sessions_and_files(stream, g, start, sessions)
        events.append(screenshot(stream, start + 4_300))
        return PlannedBroadcast(g, start, events, live=True)
    end = LAST_END - (size.broadcasts - 1 - g) * size.step
    if g % 4 < 2:  # one push of 70 to 90 minutes: an HLS file and three MP4 parts
        start = end - 4_200 - (g * 37) % 1_200
        sessions = [(start, end)]
    else:  # a break of 20 to 239 s between two pushes of 20 to 30 minutes: a new .m3u8
        first, gap, second = 1_200 + (g * 37) % 600, 20 + (g * 13) % 220, 1_200 + (g * 53) % 600
        start = end - first - gap - second
        sessions = [(start, start + first), (start + first + gap, end)]
    planned = PlannedBroadcast(g, start, sessions_and_files(stream, g, start, sessions))
    if g % size.featured_every == 3:
        planned.featured, planned.title = True, f"Highlights #{g}"
    if g % size.hidden_every == 5:
        planned.hidden = True
    return planned


def plan(size: Size, now: int, streams: range | None = None) -> Iterator[PlannedStream]:
    """The catalog, stream by stream; broadcast g is the k-th of stream g % streams."""
    count = size.streams
    for index in streams if streams is not None else range(count):
        stream = PlannedStream(index, stream_name(index), owner_of(index))
        numbers = list(range(index, size.broadcasts, count))
        live = index % size.live_every == size.live_every // 2
        for g in numbers:
            slot = index // size.live_every if live and g == numbers[-1] else None
            stream.broadcasts.append(plan_broadcast(size, stream.stream_id, g, slot, now))
        if stream.broadcasts:
            yield stream


def _check_shapes(size: Size) -> None:
    """Broadcasts have their 4 files (checked on the first stream, before building)."""
    sample = next(plan(size, int(time.time()), range(min(size.streams, 8))))
    for planned in sample.broadcasts:
        files = [p for p in planned.payloads if p["event_type"] == tencent.EVENT_RECORDING_FILE]
        assert len(files) == FILES_PER_BROADCAST, (planned.number, len(files))


# --- the rows ingestion would have written -----------------------------------------------


@dataclass
class Rows:
    """Rows of each table, as tuples in the table's column order."""

    tables: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {table_of(model).name: [] for model in TABLES}
    )

    def add(self, row: Any) -> None:
        table = table_of(type(row))
        self.tables[table.name].append(tuple(getattr(row, c.name) for c in table.columns))


def anchor_rows(size: Size, rows: Rows, streams: range) -> None:
    now = utc_now()
    for index in streams:
        owner = owner_of(index)
        if owner is None:
            user_id, fields = placeholder_user_id(stream_name(index)), {}
        elif index % 4 == 0:
            details = profile(owner)
            user_id = owner
            fields = {"nickname": details["nickname"], "avatar_url": details["avatarUrl"]}
        else:
            continue
        rows.add(
            Anchor(
                id=anchor_pk(index), user_id=user_id, is_placeholder=owner is None,
                created_at=now, updated_at=now, **fields,
            )
        )  # fmt: skip


def anchor_pk(index: int) -> int:
    return index - index % 4 + 1 if owner_of(index) else index + 1


def stream_rows(planned: PlannedStream, rows: Rows, rules: GroupingRules, now: datetime) -> None:
    """The stream's facts, broadcasts and stream row, as ingesting every callback leaves them."""
    stream_pk = planned.index + 1
    facts: list[Any] = []
    for broadcast in planned.broadcasts:
        counters = dict.fromkeys(SLOTS, 0)
        for payload in broadcast.payloads:
            event = tencent.parse_callback(payload)
            kind, values = fact_values(event, stream_pk)  # type: ignore[arg-type]
            fact = kind(**values)
            assert counters[kind] < SLOTS[kind], (broadcast.number, kind)
            fact.id = broadcast.number * SLOTS[kind] + counters[kind] + 1
            counters[kind] += 1
            facts.append(fact)
    pushes = [f for f in facts if isinstance(f, PushEvent)]
    files = [f for f in facts if isinstance(f, RecordingFile)]
    shots = [f for f in facts if isinstance(f, Screenshot)]
    # As regroup_stream reads them back.
    push_facts = [
        PushFact(p.id, p.started, p.event_time, p.sequence, p.push_duration_ms) for p in pushes
    ]
    file_facts = [
        FileFact(f.id, f.file_id, f.format, f.video_url, f.start_time, f.end_time) for f in files
    ]
    shot_facts = [ScreenshotFact(s.id, s.taken_at, s.url) for s in shots]
    shapes = group_broadcasts(push_facts, file_facts, shot_facts, rules, now)
    assert len(shapes) == len(planned.broadcasts), (planned.stream_id, len(shapes))
    member_of: dict[tuple[type, int], int] = {}
    stream = Stream(id=stream_pk, stream_id=planned.stream_id, anchor_id=anchor_pk(planned.index))
    for shape, intended in zip(shapes, planned.broadcasts, strict=True):
        broadcast = Broadcast(stream_pk=stream_pk, updated_at=utc_now(), **shaped_columns(shape))
        broadcast.place_in_room_list()
        broadcast.id = intended.number + 1
        assert all((f.id - 1) // SLOTS[RecordingFile] == intended.number for f in shape.files)
        # What curate_broadcast does (after the callbacks, by an admin).
        if intended.featured or intended.hidden or intended.title:
            broadcast.featured, broadcast.hidden = intended.featured, intended.hidden
            broadcast.title = intended.title
            broadcast.place_in_room_list()
        if shape.is_live:
            stream.is_live, stream.current_broadcast_id = True, broadcast.id
        rows.add(broadcast)
        for kind, ids in (
            (PushEvent, shape.push_ids),
            (RecordingFile, [f.id for f in shape.files]),
            (Screenshot, shape.screenshot_ids),
        ):
            member_of.update(((kind, i), broadcast.id) for i in ids)
    for fact in facts:
        fact.broadcast_id = member_of[(type(fact), fact.id)]
        rows.add(fact)
    rows.add(stream)


# --- loading -------------------------------------------------------------------------------


def async_url(server: str, name: str) -> str:
    return server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name


def plain_url(server: str, name: str) -> str:
    return server.rsplit("/", 1)[0] + "/" + name


async def create_database(server: str, name: str, replace: bool) -> None:
    admin = await asyncpg.connect(server)
    try:
        if replace:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


def migrate(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    subprocess.run(
        [sys.executable, "-m", "replay_catalog.cli", "migrate"],
        env=env, check=True, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL,
    )  # fmt: skip


CHUNK_STREAMS = 1_000


def chunk_rows(size: Size, now: int, grouped_at: datetime, streams: range) -> Rows:
    """The rows of some streams (run in worker processes: the rows are built in Python)."""
    rules = Settings().grouping_rules()
    rows = Rows()
    anchor_rows(size, rows, streams)
    for planned in plan(size, now, streams):
        stream_rows(planned, rows, rules, grouped_at)
    for records in rows.tables.values():
        records.sort()  # id first: in id order
    return rows


async def copy_catalog(connection: asyncpg.Connection, size: Size, now: int) -> dict[str, int]:
    """COPY every row of the catalog, a chunk of streams at a time; rows per table.

    Worker processes build the next chunks while this one is copied, a few at a time."""
    loop = asyncio.get_running_loop()
    written = {table_of(model).name: 0 for model in TABLES}
    grouped_at = utc_now()
    chunks = [
        range(first, min(first + CHUNK_STREAMS, size.streams))
        for first in range(0, size.streams, CHUNK_STREAMS)
    ]
    workers = max(1, min(4, (os.cpu_count() or 1)))
    with ProcessPoolExecutor(workers) as pool:
        pending: deque[asyncio.Future[Rows]] = deque()
        for streams in chunks:
            pending.append(loop.run_in_executor(pool, chunk_rows, size, now, grouped_at, streams))
            if len(pending) > workers:
                await copy_rows(connection, await pending.popleft(), written)
        while pending:
            await copy_rows(connection, await pending.popleft(), written)
    return written


async def copy_rows(connection: asyncpg.Connection, rows: Rows, written: dict[str, int]) -> None:
    for model in TABLES:
        table = table_of(model)
        records = rows.tables[table.name]
        await connection.copy_records_to_table(
            table.name, records=records, columns=[c.name for c in table.columns]
        )
        written[table.name] += len(records)


FOREIGN_KEYS = (
    ("stream", "anchor_id", "anchor"),
    ("broadcast", "stream_pk", "stream"),
    ("push_event", "stream_pk", "stream"),
    ("push_event", "broadcast_id", "broadcast"),
    ("recording_file", "stream_pk", "stream"),
    ("recording_file", "broadcast_id", "broadcast"),
    ("screenshot", "stream_pk", "stream"),
    ("screenshot", "broadcast_id", "broadcast"),
)


async def finish(connection: asyncpg.Connection, cluster: bool) -> None:
    """Check the foreign keys the load did not, move sequences, cluster, analyze."""
    for table, column, target in FOREIGN_KEYS:
        dangling = await connection.fetchval(
            f"SELECT count(*) FROM {table} t WHERE t.{column} IS NOT NULL "  # noqa: S608
            f"AND NOT EXISTS (SELECT 1 FROM {target} x WHERE x.id = t.{column})"
        )
        assert dangling == 0, f"{dangling} rows of {table}.{column} point nowhere"
    dangling = await connection.fetchval(
        "SELECT count(*) FROM stream s WHERE current_broadcast_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM broadcast b WHERE b.id = s.current_broadcast_id)"
    )
    assert dangling == 0
    for model in TABLES:
        name = table_of(model).name
        await connection.execute(
            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608
            f"(SELECT coalesce(max(id), 0) + 1 FROM {name}), false)"
        )
        if cluster:
            await connection.execute(f"CLUSTER {name} USING {name}_pkey")
    await connection.execute("ANALYZE")


@dataclass
class Built:
    database_url: str  # postgresql+asyncpg://…, for DATABASE_URL
    rows: dict[str, int]
    seconds: float


async def build(
    server: str, name: str, files: int, replace: bool = False, now: int | None = None
) -> Built:
    """Create the database `name`, migrate it and load a catalog of `files` files."""
    started = time.perf_counter()
    size = Size(files)
    _check_shapes(size)
    await create_database(server, name, replace)
    database_url = async_url(server, name)
    migrate(database_url)
    connection = await asyncpg.connect(plain_url(server, name))
    try:
        # Foreign keys are checked once at the end instead of row by row (superuser).
        await connection.execute("SET session_replication_role = replica")
        async with connection.transaction():
            rows = await copy_catalog(connection, size, now or int(time.time()))
        await connection.execute("SET session_replication_role = DEFAULT")
        await finish(connection, cluster=True)
    finally:
        await connection.close()
    return Built(database_url, rows, time.perf_counter() - started)


# --- verify: the same catalog through the callback route --------------------------------


def arrival(payload: dict[str, Any]) -> int:
    """When Tencent would send it: a file when it is written, the rest when it happens."""
    for name in ("end_time", "event_time", "create_time"):
        if name in payload:
            return int(payload[name])
    raise AssertionError(payload)


UPSERT_ANCHOR = (
    """mutation Upsert($input: AnchorInput!) { upsertAnchor(input: $input) { userId } }"""
)
CURATE = """mutation Curate($id: ID!, $featured: Boolean, $hidden: Boolean, $title: String) {
  curateBroadcast(id: $id, featured: $featured, hidden: $hidden, title: $title) { id } }"""
BROADCAST_IDS = """query Ids($s: String!) { stream(streamId: $s) {
  broadcasts(first: 100) { edges { node { id startedAt } } } } }"""


def graphql(
    http: httpx.Client, query: str, variables: dict[str, Any], admin: bool = False
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if admin else {}
    answer = http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    body = answer.json()
    assert answer.status_code == 200 and "errors" not in body, body
    return dict(body["data"])


def ingest(http: httpx.Client, streams: list[PlannedStream]) -> None:
    """Every callback through POST /callbacks/tencent, then profiles and curation."""
    payloads = sorted(
        (p for s in streams for p in s.payloads), key=lambda p: (arrival(p), json.dumps(p))
    )
    for payload in payloads:
        answer = http.post("/callbacks/tencent", json=signed(payload))
        assert answer.status_code == 200 and answer.json() == {"code": 0}, answer.text
    owners: dict[str, list[str]] = {}
    for stream in streams:
        if stream.owner is not None:
            owners.setdefault(stream.owner, []).append(stream.stream_id)
    for user_id, stream_ids in owners.items():
        data = {"userId": user_id, **profile(user_id), "streamIds": stream_ids}
        graphql(http, UPSERT_ANCHOR, {"input": data}, admin=True)
    for stream in streams:
        curated = [b for b in stream.broadcasts if b.featured or b.hidden or b.title]
        if not curated:
            continue
        edges = graphql(http, BROADCAST_IDS, {"s": stream.stream_id}, admin=True)["stream"][
            "broadcasts"
        ]
        ids = {
            int(datetime.fromisoformat(e["node"]["startedAt"]).timestamp()): e["node"]["id"]
            for e in edges["edges"]
        }
        for b in curated:
            variables = {"id": ids[b.started_at], "featured": b.featured, "hidden": b.hidden}
            graphql(http, CURATE, {**variables, "title": b.title}, admin=True)


BROADCAST_FIELDS = """isLive startedAt endedAt durationSeconds title coverUrl featured hidden
  deletedAt playbackUrl stream { streamId isLive } anchor { userId }
  recordings { fileId format videoUrl videoId fileSize startTime endTime durationSeconds }
  timeline { recording { fileId } startTime endTime offsetSeconds gapBeforeSeconds }"""
ROOMS_PAGE = (
    """query Rooms($after: String) { rooms(first: 37, after: $after) { edges { cursor node {
  kind playbackUrl title coverUrl
  anchor { userId nickname avatarUrl isLive replayCount replayDurationSeconds }
  stream { streamId isLive currentBroadcast { startedAt } }
  broadcast { id """
    + BROADCAST_FIELDS
    + " } } } pageInfo { hasNextPage endCursor } } }"
)
STREAM = (
    """query Stream($s: String!) { stream(streamId: $s) { streamId isLive
  anchor { userId } currentBroadcast { startedAt }
  broadcasts(first: 100) { edges { cursor node { id """
    + BROADCAST_FIELDS
    + " } } pageInfo { hasNextPage endCursor } } } }"
)
ANCHOR = """query Anchor($u: String!) { anchor(userId: $u) { userId nickname avatarUrl isLive
  replayCount replayDurationSeconds streams { streamId isLive }
  replays(first: 100) { edges { cursor node { startedAt endedAt playbackUrl
    recordings { fileId } } } pageInfo { hasNextPage } } } }"""
RECORDINGS_PAGE = """query Files($after: String) { recordingFiles(first: 100, after: $after) {
  edges { cursor node { fileId format videoUrl startTime endTime stream { streamId }
    broadcast { startedAt } } } pageInfo { hasNextPage endCursor } } }"""
STITCHED = re.compile(r"/replays/[^/\"]+\.m3u8")


def comparable(value: Any) -> Any:
    """An answer without what differs between two databases: ids, and the ids in cursors
    and stitched playlist URLs."""
    if isinstance(value, dict):
        return {
            k: comparable_cursor(v) if k in ("cursor", "endCursor") else comparable(v)
            for k, v in value.items()
            if k != "id"
        }
    if isinstance(value, list):
        return [comparable(item) for item in value]
    if isinstance(value, str):
        return STITCHED.sub("/replays/ID.m3u8", value)
    return value


def comparable_cursor(cursor: str | None) -> Any:
    if cursor is None:
        return None
    name, *position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    if name.startswith(("broadcasts:", "replays:")):
        name = name.split(":")[0]  # named after a primary key
    if position and isinstance(position[-1], int):
        position = position[:-1]  # the id that breaks ties
    return [name, *position]


def walk(http: httpx.Client, query: str, field_name: str, admin: bool) -> list[Any]:
    """Every page of a connection, following endCursor."""
    pages: list[Any] = []
    after = None
    while True:
        connection = graphql(http, query, {"after": after}, admin)[field_name]
        pages.append(connection)
        if not connection["pageInfo"]["hasNextPage"]:
            return pages
        after = connection["pageInfo"]["endCursor"]


def answers(base_url: str, streams: list[PlannedStream]) -> dict[str, Any]:
    """What GraphQL says about the whole catalog, keyed by what was asked."""
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, timeout=60) as http:
        for admin in (False, True):
            who = "admin" if admin else "public"
            out[f"rooms/{who}"] = walk(http, ROOMS_PAGE, "rooms", admin)
            out[f"recordingFiles/{who}"] = walk(http, RECORDINGS_PAGE, "recordingFiles", admin)
            for stream in streams:
                out[f"stream {stream.stream_id}/{who}"] = graphql(
                    http, STREAM, {"s": stream.stream_id}, admin
                )
                user = stream.owner or placeholder_user_id(stream.stream_id)
                out[f"anchor {user}/{who}"] = graphql(http, ANCHOR, {"u": user}, admin)
    return {key: comparable(value) for key, value in out.items()}


# Every stored row, by natural keys instead of ids (insertion times left out).
ROW_QUERIES = {
    "anchor": "SELECT user_id, nickname, avatar_url, is_placeholder FROM anchor",
    "stream": """SELECT s.stream_id, a.user_id, s.is_live, b.started_at FROM stream s
        JOIN anchor a ON a.id = s.anchor_id
        LEFT JOIN broadcast b ON b.id = s.current_broadcast_id""",
    "broadcast": """SELECT s.stream_id, b.started_at, b.ended_at, b.is_live, b.duration_seconds,
        b.playback_url, b.hls_part_count, b.recording_count, b.room_rank, b.room_time,
        b.last_seen_at, b.cover_url, b.title, b.featured, b.hidden, b.deleted_at
        FROM broadcast b JOIN stream s ON s.id = b.stream_pk""",
    "recording_file": """SELECT r.file_id, s.stream_id, b.started_at, r.format, r.video_url,
        r.video_id, r.file_size, r.start_time, r.end_time, r.duration_seconds, r.task_id
        FROM recording_file r JOIN stream s ON s.id = r.stream_pk
        LEFT JOIN broadcast b ON b.id = r.broadcast_id""",
    "push_event": """SELECT s.stream_id, p.started, p.event_time, p.sequence,
        p.push_duration_ms, p.errcode, p.errmsg, b.started_at
        FROM push_event p JOIN stream s ON s.id = p.stream_pk
        LEFT JOIN broadcast b ON b.id = p.broadcast_id""",
    "screenshot": """SELECT s.stream_id, x.taken_at, x.url, x.width, x.height, b.started_at
        FROM screenshot x JOIN stream s ON s.id = x.stream_pk
        LEFT JOIN broadcast b ON b.id = x.broadcast_id""",
}


async def stored_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    connection = await asyncpg.connect(url)
    try:
        out = {}
        for name, query in ROW_QUERIES.items():
            rows = [tuple(r) for r in await connection.fetch(query)]
            out[name] = sorted(rows, key=repr)
        # A sequence must hand out new ids past those used (callbacks after the load).
        for name in ROW_QUERIES:
            behind = await connection.fetchval(
                f"SELECT nextval(pg_get_serial_sequence('{name}', 'id')) "  # noqa: S608
                f"<= (SELECT coalesce(max(id), 0) FROM {name})"
            )
            out[f"{name} sequence behind"] = [(behind,)]
        return out
    finally:
        await connection.close()


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    found = []
    for key in sorted(set(expected) | set(actual)):
        if expected.get(key) != actual.get(key):
            left = json.dumps(expected.get(key), default=str, sort_keys=True)
            right = json.dumps(actual.get(key), default=str, sort_keys=True)
            at = next((i for i, (a, b) in enumerate(zip(left, right, strict=False)) if a != b), 0)
            found.append(
                f"{key}: ingested …{left[max(0, at - 120) : at + 120]}… "
                f"bulk …{right[max(0, at - 120) : at + 120]}…"
            )
    return found


def serve(database_url: str, **settings: str) -> tuple[subprocess.Popen[bytes], str]:
    """`replay-catalog serve` on a free port, ready; `settings`: more environment variables."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CALLBACK_KEY": KEY,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "LOG_LEVEL": "WARNING",
        "REFUSED_CALLBACKS_PER_MINUTE": "100000",
        "RECONCILE_INTERVAL_SECONDS": "0",
        "PUBLIC_BASE_URL": "http://catalog.example.com",
        **settings,
    }
    command = [sys.executable, "-m", "replay_catalog.cli", "serve", "--port", str(port)]
    return start(command, env, port), f"http://127.0.0.1:{port}"


def verify(server: str, files: int, keep: bool) -> bool:
    suffix = f"{os.getpid()}"
    ingested_name, bulk_name = (
        f"replay_bulk_verify_http_{suffix}",
        f"replay_bulk_verify_copy_{suffix}",
    )
    size = Size(files)
    now = int(time.time())
    streams = list(plan(size, now))
    started = time.perf_counter()
    asyncio.run(create_database(server, ingested_name, replace=True))
    ingested_url = async_url(server, ingested_name)
    processes = []
    try:
        process, base = serve(ingested_url)
        processes.append(process)
        with httpx.Client(base_url=base, timeout=60) as http:
            ingest(http, streams)
        events = sum(len(s.payloads) for s in streams)
        print(f"ingested {events} callbacks in {time.perf_counter() - started:.1f} s")
        built = asyncio.run(build(server, bulk_name, files, replace=True, now=now))
        print(f"bulk-loaded {built.rows} in {built.seconds:.1f} s")
        process, bulk_base = serve(built.database_url)
        processes.append(process)
        expected, actual = answers(base, streams), answers(bulk_base, streams)
        expected_rows = asyncio.run(stored_rows(plain_url(server, ingested_name)))
        actual_rows = asyncio.run(stored_rows(plain_url(server, bulk_name)))
    finally:
        for process in processes:
            process.terminate()
            process.wait()
        if not keep:
            for name in (ingested_name, bulk_name):
                asyncio.run(drop_database(server, plain_url(server, name)))
    found = differences(expected, actual) + differences(expected_rows, actual_rows)
    rooms = sum(len(page["edges"]) for page in expected["rooms/public"])
    print(
        f"compared {len(expected)} GraphQL answers ({rooms} public rooms, "
        f"{len(streams)} streams) and {sum(len(v) for v in expected_rows.values())} stored rows"
    )
    for line in found[:20]:
        print("DIFFERENT", line)
    print("verify:", "FAILED" if found else "the bulk catalog is what ingestion builds")
    return not found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, help="recording files (default 1,000,000; 400)")
    parser.add_argument("--database", help="database name (default replay_bulk_<files>)")
    parser.add_argument("--postgres", default=SERVER, help="a database on the server to use")
    parser.add_argument("--replace", action="store_true", help="drop the database if it exists")
    parser.add_argument("--verify", action="store_true", help="compare with real ingestion")
    parser.add_argument("--keep", action="store_true", help="with --verify: keep both databases")
    args = parser.parse_args()
    if args.verify:
        sys.exit(0 if verify(args.postgres, args.files or 400, args.keep) else 1)
    files = args.files or 1_000_000
    name = args.database or f"replay_bulk_{files}"
    built = asyncio.run(build(args.postgres, name, files, replace=args.replace))
    print(f"{name}: {built.rows} in {built.seconds:.1f} s")
    print(f"DATABASE_URL={built.database_url}")


if __name__ == "__main__":
    main()
