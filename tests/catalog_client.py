"""A test client that talks to the real app over HTTP, the way Tencent and apps do."""

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import event

from replay_catalog.app import create_app
from replay_catalog.settings import Settings
from storage.database import Database

CALLBACK_KEY = "test-callback-key"
ADMIN_TOKEN = "test-admin-token"

# Databases that cannot be reached: a SQLite file in a missing folder, a closed port.
UNREACHABLE_DATABASES = {
    "sqlite": "sqlite+aiosqlite:////nonexistent-directory/catalog.db",
    "postgres": "postgresql+asyncpg://postgres@127.0.0.1:1/test",
}

# A fixed moment most tests' events are placed around (2026-11-01 12:00 UTC).
BASE = 1_793_534_400


def sign(payload: dict[str, Any], key: str = CALLBACK_KEY, expires_in: int = 600) -> dict[str, Any]:
    """The payload as Tencent sends it: with `t` (expiry) and `sign = md5(key + t)`."""
    t = int(time.time()) + expires_in
    return {**payload, "t": t, "sign": hashlib.md5(f"{key}{t}".encode()).hexdigest()}


def push(stream_id: str, at: int, sequence: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "event_type": 1,
        "stream_id": stream_id,
        "channel_id": stream_id,
        "event_time": at,
        "sequence": sequence,
        **extra,
    }


def cut(stream_id: str, at: int, sequence: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "event_type": 0,
        "stream_id": stream_id,
        "channel_id": stream_id,
        "event_time": at,
        "sequence": sequence,
        "errcode": 1,
        "errmsg": "recv rtmpcloseStream",
        **extra,
    }


def recording(
    stream_id: str, file_id: str, start: int, end: int, file_format: str = "hls", **extra: Any
) -> dict[str, Any]:
    extension = {"hls": "m3u8", "mp4": "mp4", "flv": "flv", "aac": "aac"}[file_format]
    return {
        "event_type": 100,
        "stream_id": stream_id,
        "channel_id": stream_id,
        "file_id": file_id,
        "file_format": file_format,
        "video_url": f"http://1252033264.vod2.myqcloud.com/{file_id}/f0.{extension}",
        "video_id": f"1252033264_{file_id}",
        "file_size": (end - start) * 100_000,
        "start_time": start,
        "end_time": end,
        **extra,
    }


def screenshot(stream_id: str, at: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_type": 200,
        "stream_id": stream_id,
        "channel_id": stream_id,
        "create_time": at,
        "pic_url": f"/shots/{stream_id}-{at}.jpg",
        "pic_full_url": f"http://1252033264.vod2.myqcloud.com/shots/{stream_id}-{at}.jpg",
        **extra,
    }


def iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat()


# What a test usually wants to see of a stream's broadcasts.
STREAM_CATALOG = """
query StreamCatalog($streamId: String!) {
  stream(streamId: $streamId) {
    streamId isLive anchor { userId }
    currentBroadcast { startedAt }
    broadcasts(first: 100) {
      edges { node {
        isLive startedAt endedAt durationSeconds playbackUrl
        recordings { fileId format startTime endTime durationSeconds }
      } }
    }
  }
}
"""


ROOM_FIELDS = "kind playbackUrl stream { streamId } broadcast { id startedAt endedAt }"

# What users see of a broadcast, for snapshots (`id` is taken out before comparing).
SNAPSHOT_BROADCAST = """id isLive startedAt endedAt durationSeconds playbackUrl coverUrl
    recordings { fileId format }"""
SNAPSHOT_ROOM = f"""kind playbackUrl coverUrl anchor {{ userId }} stream {{ streamId }}
    broadcast {{ {SNAPSHOT_BROADCAST} }}"""
SNAPSHOT_STREAM = f"""query SnapshotStream($streamId: String!) {{
  stream(streamId: $streamId) {{
    streamId isLive anchor {{ userId }} currentBroadcast {{ startedAt }}
    broadcasts(first: 100) {{
      edges {{ node {{ {SNAPSHOT_BROADCAST} }} }}
      pageInfo {{ hasNextPage }}
    }}
  }}
}}"""
# A replay of several HLS parts plays /replays/{broadcast id}.m3u8 on whatever host served it.
STITCHED_URL = re.compile(r"^https?://[^/]+/replays/(?P<id>[^/]+)\.m3u8$")


def _without_ids(broadcast: dict[str, Any]) -> dict[str, Any]:
    """A broadcast as users see it, minus what depends on arrival order (its id)."""
    seen = dict(broadcast)
    broadcast_id = seen.pop("id")
    stitched = STITCHED_URL.match(seen["playbackUrl"] or "")
    if stitched:
        assert stitched["id"] == broadcast_id, f"{seen['playbackUrl']} is another broadcast's"
        seen["playbackUrl"] = "/replays/<this broadcast>.m3u8"
    return seen


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "callback_key": CALLBACK_KEY,
        "admin_token": ADMIN_TOKEN,
        "reconnect_window_seconds": 300,
        # Test events are dated around BASE (2026-11-01): rooms there stay live until
        # their cut-off unless a test sets a live silence (tests/test_liveness.py).
        "live_silence_seconds": 0,
        # Every in-process test is one client (127.0.0.1) asking as fast as it can;
        # tests/test_admission.py sets its own.
        "graphql_computations_per_client_per_second": 0,
        # Tests of the callback limits count 429s; tests/test_callbacks.py times the wait.
        "callback_refusal_wait_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def clients_of(settings: Settings, *addresses: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One app; an HTTP client of it from each address."""
    database = Database(settings.database_url)
    app = create_app(settings, database)
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 40000)),
            base_url="http://catalog.test",
            timeout=10,
        )
        for address in addresses
    ]
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()
        await database.dispose()


class CatalogClient:
    """HTTP access to one app instance, plus helpers that read what users see."""

    def __init__(self, http: httpx.AsyncClient, database: Database) -> None:
        self.http = http
        self.database = database

    @classmethod
    @asynccontextmanager
    async def started(
        cls, settings: Settings, database: Database | None = None
    ) -> AsyncIterator["CatalogClient"]:
        database = database or Database(settings.database_url)
        app = create_app(settings, database)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog.test") as http:
            try:
                yield cls(http, database)
            finally:
                await database.dispose()

    @classmethod
    @asynccontextmanager
    async def at(cls, base_url: str, database_url: str) -> AsyncIterator["CatalogClient"]:
        """A client of a service running elsewhere (`replay-catalog serve` on loopback)."""
        database = Database(database_url)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            try:
                yield cls(http, database)
            finally:
                await database.dispose()

    @contextmanager
    def counting_statements(self, selects_only: bool = False) -> Iterator[list[str]]:
        """Every SQL statement (or every SELECT) the app runs inside the block."""
        statements: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if not selects_only or statement.lstrip().upper().startswith("SELECT"):
                statements.append(statement)

        def heard(statement: str) -> None:  # a read straight through asyncpg
            record(None, None, statement)

        engines = self.database.sync_engines
        for engine in engines:
            event.listen(engine, "before_cursor_execute", record)
        self.database.driver_statement_listeners.append(heard)
        try:
            yield statements
        finally:
            self.database.driver_statement_listeners.remove(heard)
            for engine in engines:
                event.remove(engine, "before_cursor_execute", record)

    async def post_callback(self, payload: Any, **kwargs: Any) -> httpx.Response:
        return await self.http.post("/callbacks/tencent", json=payload, **kwargs)

    async def send(self, payload: dict[str, Any]) -> httpx.Response:
        """Deliver a signed event and insist that it was accepted."""
        response = await self.post_callback(sign(payload))
        assert response.status_code == 200, response.text
        assert response.json() == {"code": 0}
        return response

    async def send_all(self, payloads: Iterable[dict[str, Any]]) -> None:
        for payload in payloads:
            await self.send(payload)

    async def graphql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """The `data` of a query that must succeed."""
        body = await self.graphql(query, variables, token)
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    async def stream_catalog(self, stream_id: str) -> dict[str, Any] | None:
        return (await self.data(STREAM_CATALOG, {"streamId": stream_id}))["stream"]

    async def broadcasts(self, stream_id: str) -> list[dict[str, Any]]:
        """The stream's broadcasts, oldest first."""
        stream = await self.stream_catalog(stream_id)
        assert stream is not None, f"stream {stream_id} is not in the catalog"
        return [edge["node"] for edge in reversed(stream["broadcasts"]["edges"])]

    async def all_rooms(self, page: int = 7, fields: str = ROOM_FIELDS) -> list[dict[str, Any]]:
        """Every room (these `fields` of it), walking the list page by page with cursors."""
        rooms: list[dict[str, Any]] = []
        after = None
        while True:
            data = await self.data(
                f"""query Rooms($first: Int, $after: String) {{
                     rooms(first: $first, after: $after) {{
                       edges {{ cursor node {{ {fields} }} }}
                       pageInfo {{ hasNextPage endCursor }}
                     }} }}""",
                {"first": page, "after": after},
            )
            connection = data["rooms"]
            rooms += [edge["node"] for edge in connection["edges"]]
            if not connection["pageInfo"]["hasNextPage"]:
                return rooms
            after = connection["pageInfo"]["endCursor"]

    async def snapshot(self, stream_ids: Iterable[str], concurrency: int = 8) -> dict[str, Any]:
        """Everything users see of the catalog and of these streams, without ids.

        Every room across all pages (in list order) and each stream with its broadcasts.
        Two catalogs built from the same events compare equal whatever the arrival order.
        """
        rooms = []
        for room in await self.all_rooms(page=100, fields=SNAPSHOT_ROOM):
            seen = {**room, "broadcast": _without_ids(room["broadcast"])}
            if STITCHED_URL.match(room["playbackUrl"] or ""):
                assert room["playbackUrl"] == room["broadcast"]["playbackUrl"]
                seen["playbackUrl"] = seen["broadcast"]["playbackUrl"]
            rooms.append(seen)
        limit = asyncio.Semaphore(concurrency)

        async def stream(stream_id: str) -> dict[str, Any] | None:
            async with limit:
                found = (await self.data(SNAPSHOT_STREAM, {"streamId": stream_id}))["stream"]
            if found is None:
                return None
            connection = found.pop("broadcasts")
            assert not connection["pageInfo"]["hasNextPage"], f"{stream_id}: over 100 broadcasts"
            found["broadcasts"] = [_without_ids(edge["node"]) for edge in connection["edges"]]
            return found  # type: ignore[no-any-return]

        ids = sorted(set(stream_ids))
        streams = await asyncio.gather(*(stream(stream_id) for stream_id in ids))
        return {"rooms": rooms, "streams": dict(zip(ids, streams, strict=True))}
