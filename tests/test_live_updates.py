"""Subscriptions over WebSocket (graphql-transport-ws), on one server and across replicas."""

import asyncio
import json
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx
import pytest
import uvicorn
import websockets
from sqlalchemy import event
from strawberry.types import ExecutionResult

from replay_catalog.app import create_app
from resolvers.shared_subscriptions import SharedSubscriptions, SubscriptionCaps
from storage.changefeed import (
    CHANNEL,
    MAX_PAYLOAD_BYTES,
    CatalogChange,
    ChangeFeed,
    SubscriberTooSlow,
)
from storage.database import Database
from storage.unit_of_work import UnitOfWork
from tests.catalog_client import (
    ADMIN_TOKEN,
    BASE,
    CatalogClient,
    cut,
    make_settings,
    push,
    recording,
    sign,
)
from tests.conftest import fresh_postgres_database
from tests.servers import Server, free_port, serving

pytestmark = pytest.mark.anyio

ROOMS_CHANGED = """subscription { roomsChanged { broadcastId
    room { kind stream { streamId } broadcast { isLive endedAt recordings { fileId } } } } }"""
STREAM_UPDATED = """subscription Stream($streamId: String!) {
    streamUpdated(streamId: $streamId) { streamId isLive currentBroadcast { id } } }"""
BROADCAST_UPDATED = """subscription Broadcast($id: ID!) {
    broadcastUpdated(id: $id) { id isLive title recordings { fileId } } }"""
# Events are dated weeks ago (BASE): rooms without their cut-off stay live.
SERVE_SETTINGS = {"LIVE_SILENCE_SECONDS": "0"}


@dataclass
class InProcessServer:
    """The app served by uvicorn inside the test's own process."""

    base_url: str

    @property
    def websocket_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/graphql"


@asynccontextmanager
async def serving_in_process(
    catalog: CatalogClient, database_url: str
) -> AsyncIterator[InProcessServer]:
    """The app on the test's own Database, on a loopback port: its statements can be counted
    (CatalogClient.counting_statements), and it hears the changes `catalog` ingests."""
    port = free_port()
    app = create_app(make_settings(database_url), catalog.database)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn has no "started" event
        await asyncio.sleep(0.01)
    try:
        yield InProcessServer(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await task


class Subscriber:
    """One graphql-transport-ws connection."""

    def __init__(self, websocket: Any) -> None:
        self.websocket = websocket

    @classmethod
    @asynccontextmanager
    async def connected(
        cls, server: Server | InProcessServer, headers: dict[str, str] | None = None
    ) -> AsyncIterator["Subscriber"]:
        async with websockets.connect(
            server.websocket_url, subprotocols=["graphql-transport-ws"], additional_headers=headers
        ) as websocket:
            await websocket.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await websocket.recv())["type"] == "connection_ack"
            yield cls(websocket)

    async def subscribe(
        self, key: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        payload = {"query": query, "variables": variables or {}}
        await self.websocket.send(json.dumps({"id": key, "type": "subscribe", "payload": payload}))

    async def end(self, key: str) -> None:
        """End one of its subscriptions (the client's `complete`)."""
        await self.websocket.send(json.dumps({"id": key, "type": "complete"}))

    async def message(self, seconds: float = 10) -> dict[str, Any]:
        """The next message about a subscription (next, error or complete)."""
        with anyio.fail_after(seconds):
            while True:
                message = json.loads(await self.websocket.recv())
                if message["type"] == "ping":
                    await self.websocket.send(json.dumps({"type": "pong"}))
                elif message["type"] != "pong":
                    return dict(message)

    async def data(self, key: str) -> dict[str, Any]:
        message = await self.message()
        assert message["id"] == key and message["type"] == "next", message
        assert "errors" not in message["payload"], message
        return dict(message["payload"]["data"])

    async def by_subscription(self, count: int) -> dict[str, dict[str, Any]]:
        """The next `count` messages, by subscription id (for subscriptions told at once)."""
        messages = [await self.message() for _ in range(count)]
        return {message["id"]: message for message in messages}

    async def room_change_of(
        self, stream_id: str, seconds: float = 10, key: str = "rooms"
    ) -> dict[str, Any]:
        """The next roomsChanged event whose room is on `stream_id`, skipping others."""
        with anyio.fail_after(seconds):
            while True:
                change = (await self.data(key))["roomsChanged"]
                room = change["room"]
                if room is not None and room["stream"]["streamId"] == stream_id:
                    return dict(change)


async def subscriptions_open(server: Server | InProcessServer, count: int) -> None:
    """Wait until the server says `count` subscriptions are listening (GET /metrics)."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        with anyio.fail_after(10):
            while True:
                page = (await http.get("/metrics")).text
                found = re.search(r"^replay_catalog_subscriptions (\S+)$", page, re.MULTILINE)
                if found and float(found.group(1)) == count:
                    return
                await anyio.sleep(0.05)


async def post(server: Server, event: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.post("/callbacks/tencent", json=sign(event))
        assert answer.status_code == 200, answer.text


async def curate(server: Server, broadcast_id: str, arguments: str) -> dict[str, Any]:
    """curateBroadcast(id, <arguments>) on the server, as an admin; the broadcast's title."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.post(
            "/graphql",
            json={
                "query": f"mutation($id: ID!) {{ curateBroadcast(id: $id, {arguments}) "
                "{ title } }",
                "variables": {"id": broadcast_id},
            },
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    return dict(answer.json()["data"]["curateBroadcast"])


async def as_admin(server: Server, mutation: str, broadcast_id: str) -> None:
    """One admin mutation of a broadcast (`$id`) on the server, insisting that it worked."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.post(
            "/graphql",
            json={
                "query": f"mutation($id: ID!) {{ {mutation} {{ id }} }}",
                "variables": {"id": broadcast_id},
            },
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    assert "errors" not in answer.json(), answer.text


async def test_rooms_changed_tells_when_a_room_goes_live_and_becomes_a_replay(
    catalog: CatalogClient, database_url: str, tmp_path: Path
) -> None:
    async with (
        serving(database_url, tmp_path, **SERVE_SETTINGS) as server,
        Subscriber.connected(server) as subscriber,
    ):
        await subscriber.subscribe("rooms", ROOMS_CHANGED)
        await subscriptions_open(server, 1)

        await post(server, push("2121_alice", BASE, "s1"))
        went_live = await subscriber.room_change_of("2121_alice")
        assert went_live["room"]["kind"] == "LIVE"

        await post(server, recording("2121_alice", "f1", BASE, BASE + 600))
        await post(server, cut("2121_alice", BASE + 600, "s1"))
        while (change := await subscriber.room_change_of("2121_alice"))["room"]["kind"] == "LIVE":
            pass
        assert change["broadcastId"] == went_live["broadcastId"]
        assert change["room"]["kind"] == "REPLAY"
        assert change["room"]["broadcast"]["recordings"] == [{"fileId": "f1"}]

        # A duplicate changes nothing, so it tells nothing.
        await post(server, cut("2121_alice", BASE + 600, "s1"))
        await post(server, push("2121_bob", BASE + 900))
        assert (await subscriber.room_change_of("2121_bob"))["room"]["kind"] == "LIVE"


async def test_stream_and_broadcast_subscriptions_follow_their_object(
    catalog: CatalogClient, database_url: str, tmp_path: Path
) -> None:
    await catalog.send(push("2121_carol", BASE, "s1"))
    [broadcast] = (await catalog.data("{ rooms { edges { node { broadcast { id } } } } }"))[
        "rooms"
    ]["edges"]
    broadcast_id = broadcast["node"]["broadcast"]["id"]
    async with (
        serving(database_url, tmp_path, **SERVE_SETTINGS) as server,
        Subscriber.connected(server) as subscriber,
    ):
        await subscriber.subscribe("stream", STREAM_UPDATED, {"streamId": "2121_carol"})
        await subscriber.subscribe("broadcast", BROADCAST_UPDATED, {"id": broadcast_id})
        await subscriber.subscribe("other", STREAM_UPDATED, {"streamId": "2121_dave"})
        await subscriptions_open(server, 3)

        await post(server, recording("2121_carol", "c1", BASE, BASE + 60))
        got = await subscriber.by_subscription(2)
        assert got["stream"]["payload"]["data"]["streamUpdated"]["isLive"] is True
        assert got["broadcast"]["payload"]["data"]["broadcastUpdated"] == {
            "id": broadcast_id,
            "isLive": True,
            "title": None,
            "recordings": [{"fileId": "c1"}],
        }

        await post(server, cut("2121_carol", BASE + 60, "s1"))
        got = await subscriber.by_subscription(2)
        assert got["stream"]["payload"]["data"]["streamUpdated"] == {
            "streamId": "2121_carol",
            "isLive": False,
            "currentBroadcast": None,
        }
        assert got["broadcast"]["payload"]["data"]["broadcastUpdated"]["isLive"] is False

        # Curation reaches subscribers too; hiding a broadcast ends its public subscription.
        assert await curate(server, broadcast_id, 'title: "Best"') == {"title": "Best"}
        got = await subscriber.by_subscription(2)
        assert got["broadcast"]["payload"]["data"]["broadcastUpdated"]["title"] == "Best"
        assert await curate(server, broadcast_id, "hidden: true") == {"title": "Best"}
        got = await subscriber.by_subscription(2)
        assert got["broadcast"] == {"id": "broadcast", "type": "complete"}
        assert got["stream"]["type"] == "next"  # the stream is still public


async def test_a_subscription_to_an_unknown_broadcast_is_refused_clearly(
    catalog: CatalogClient, database_url: str, tmp_path: Path
) -> None:
    async with (
        serving(database_url, tmp_path, **SERVE_SETTINGS, SUBSCRIPTIONS_MAX="1") as server,
        Subscriber.connected(server) as subscriber,
    ):
        await subscriber.subscribe("nothing", BROADCAST_UPDATED, {"id": "QnJvYWRjYXN0Ojk5"})
        refused = await subscriber.message()
        assert refused["type"] == "next", refused
        assert [e["message"] for e in refused["payload"]["errors"]] == ["no broadcast has this id"]
        assert await subscriber.message() == {"id": "nothing", "type": "complete"}

        await subscriber.subscribe("rooms", ROOMS_CHANGED)
        await subscriptions_open(server, 1)
        await subscriber.subscribe("more", ROOMS_CHANGED)
        too_many = await subscriber.message()
        assert too_many["id"] == "more", too_many
        assert "already has 1 subscriptions" in too_many["payload"]["errors"][0]["message"]


async def test_a_subscriber_that_falls_behind_is_ended_instead_of_growing_memory() -> None:
    feed = ChangeFeed("sqlite+aiosqlite:///unused.db", queue_size=3)
    slow = feed.subscribe()
    waiting = asyncio.ensure_future(anext(slow))
    await asyncio.sleep(0)
    assert feed.subscriber_count == 1
    for index in range(1000):
        feed.deliver(CatalogChange("2121_x", (index,)))
    assert feed.subscriber_count == 0  # dropped when its queue overflowed
    received = [await waiting]
    with pytest.raises(SubscriberTooSlow):
        while True:
            received.append(await anext(slow))
    assert len(received) <= 3  # what its queue held, never all 1000


@pytest.fixture
def shared_postgres() -> Iterator[str]:
    """A PostgreSQL database of this test's own, for two replicas to share."""
    with fresh_postgres_database() as url:
        yield url


@pytest.mark.postgres
async def test_a_callback_to_one_replica_reaches_a_subscriber_on_another(
    shared_postgres: str, tmp_path: Path
) -> None:
    async with (
        serving(shared_postgres, tmp_path, **SERVE_SETTINGS) as first,
        serving(shared_postgres, tmp_path, **SERVE_SETTINGS) as second,
        Subscriber.connected(second) as subscriber,
    ):
        await subscriber.subscribe("rooms", ROOMS_CHANGED)
        await subscriptions_open(second, 1)

        sent = time.monotonic()
        await post(first, push("2121_erin", BASE, "s1"))
        change = await subscriber.room_change_of("2121_erin", seconds=1)
        assert time.monotonic() - sent < 1
        assert change["room"]["kind"] == "LIVE"

        async with httpx.AsyncClient(base_url=second.base_url) as http:
            rooms = await http.post(
                "/graphql",
                json={"query": "{ rooms { edges { node { kind stream { streamId } } } } }"},
            )
        assert rooms.json()["data"]["rooms"]["edges"] == [
            {"node": {"kind": "LIVE", "stream": {"streamId": "2121_erin"}}}
        ]


@pytest.mark.postgres
async def test_a_transactions_changes_reach_another_replica_however_many_it_holds(
    shared_postgres: str,
) -> None:
    """A transaction's changes go to the other replicas in as few NOTIFYs as they fit in
    (PostgreSQL refuses payloads of 8000 bytes or more); an announcement as releases
    before sent them, one change per NOTIFY, is still understood."""
    listener = Database(shared_postgres, subscriber_queue_size=1000)
    writer = Database(shared_postgres)
    changes = [CatalogChange(f"2121_{'x' * 60}{n}", (n, n + 1), True, (n,)) for n in range(300)]
    assert sum(len(c.to_json()) for c in changes) > 3 * MAX_PAYLOAD_BYTES
    try:
        heard = listener.changes.subscribe()
        first = asyncio.ensure_future(anext(heard))
        await listener.changes.start()
        await asyncio.sleep(0.1)

        def announce_all(work: UnitOfWork) -> None:
            work.changes.announcements.extend(changes)

        with counting_notifies(writer) as notifies:
            await writer.write(announce_all)
        assert 1 < len(notifies) < 10
        received = [await asyncio.wait_for(first, 5)]
        while len(received) < len(changes):
            received.append(await asyncio.wait_for(anext(heard), 5))
        assert received == changes

        old = CatalogChange("2121_old", (7,), False, ())
        connection = await asyncpg.connect(shared_postgres.replace("+asyncpg", ""))
        try:
            await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, old.to_json())
        finally:
            await connection.close()
        assert await asyncio.wait_for(anext(heard), 5) == old
    finally:
        await listener.dispose()
        await writer.dispose()


@contextmanager
def counting_notifies(database: Database) -> Iterator[list[str]]:
    """The NOTIFY statements the database's engines run inside the block."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "pg_notify" in statement:
            statements.append(statement)

    for engine in database.sync_engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in database.sync_engines:
            event.remove(engine, "before_cursor_execute", record)


async def test_every_subscriber_of_a_document_is_told_the_same_change(
    catalog: CatalogClient, database_url: str, tmp_path: Path
) -> None:
    async with (
        serving(database_url, tmp_path, **SERVE_SETTINGS) as server,
        Subscriber.connected(server) as first,
        Subscriber.connected(server) as second,
    ):
        for subscriber in (first, second):
            for index in range(3):
                await subscriber.subscribe(f"rooms{index}", ROOMS_CHANGED)
        await second.subscribe("other", STREAM_UPDATED, {"streamId": "2121_nobody"})
        await subscriptions_open(server, 7)

        await post(server, push("2121_many", BASE, "s1"))
        told = [
            *(await first.by_subscription(3)).values(),
            *(await second.by_subscription(3)).values(),
        ]
        assert {message["id"] for message in told} == {"rooms0", "rooms1", "rooms2"}
        payloads = [message["payload"] for message in told]
        assert payloads == [payloads[0]] * 6
        assert payloads[0]["data"]["roomsChanged"]["room"]["stream"] == {"streamId": "2121_many"}


async def test_a_change_is_read_once_however_many_subscribe_to_it(
    catalog: CatalogClient, database_url: str
) -> None:
    selects_per_change: dict[int, int] = {}
    async with serving_in_process(catalog, database_url) as server:
        for count, stream_id in ((1, "2121_once"), (8, "2121_eight")):
            async with Subscriber.connected(server) as subscriber:
                for index in range(count):
                    await subscriber.subscribe(f"rooms{index}", ROOMS_CHANGED)
                await subscriptions_open(server, count)
                with catalog.counting_statements(selects_only=True) as selects:
                    await catalog.send(push(stream_id, BASE, "s1"))
                    told = await subscriber.by_subscription(count)
                    rooms = [m["payload"]["data"]["roomsChanged"]["room"] for m in told.values()]
                    assert [room["stream"]["streamId"] for room in rooms] == [stream_id] * count
                selects_per_change[count] = len(selects)
            await subscriptions_open(server, 0)
    # The same statements for one subscriber as for eight: ingestion's, and one read.
    assert selects_per_change[8] == selects_per_change[1]


async def test_one_client_address_cannot_hold_more_subscriptions_than_its_cap(
    catalog: CatalogClient, database_url: str, tmp_path: Path
) -> None:
    async with (
        serving(database_url, tmp_path, **SERVE_SETTINGS, SUBSCRIPTIONS_PER_CLIENT="2") as server,
        Subscriber.connected(server) as first,
        Subscriber.connected(server) as second,
    ):
        await first.subscribe("a", ROOMS_CHANGED)
        await second.subscribe("b", STREAM_UPDATED, {"streamId": "2121_capped"})
        await subscriptions_open(server, 2)

        # The cap is the address's, however many WebSockets it opens.
        await second.subscribe("c", ROOMS_CHANGED)
        refused = await second.message()
        assert refused["id"] == "c" and refused["type"] == "next", refused
        assert [error["message"] for error in refused["payload"]["errors"]] == [
            "this client address already has 2 subscriptions open; end one before starting another"
        ]
        assert await second.message() == {"id": "c", "type": "complete"}

        # Ending one makes room for another.
        await first.end("a")
        await subscriptions_open(server, 1)
        await second.subscribe("d", ROOMS_CHANGED)
        await subscriptions_open(server, 2)
        await post(server, push("2121_capped", BASE, "s1"))
        told = await second.by_subscription(2)
        assert told["d"]["payload"]["data"]["roomsChanged"]["room"]["kind"] == "LIVE"
        assert told["b"]["payload"]["data"]["streamUpdated"]["isLive"] is True


@pytest.mark.parametrize(
    "removal", ["curateBroadcast(id: $id, hidden: true)", "deleteBroadcast(id: $id)"]
)
async def test_anonymous_subscribers_hear_once_that_a_room_left_and_nothing_of_it_after(
    catalog: CatalogClient, database_url: str, tmp_path: Path, removal: str
) -> None:
    async with (
        serving(database_url, tmp_path, **SERVE_SETTINGS) as server,
        Subscriber.connected(server) as anonymous,
        Subscriber.connected(server, {"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin,
    ):
        await anonymous.subscribe("rooms", ROOMS_CHANGED)
        await admin.subscribe("rooms", ROOMS_CHANGED)
        await subscriptions_open(server, 2)
        await post(server, push("2121_secret", BASE, "s1"))
        broadcast_id = (await anonymous.room_change_of("2121_secret"))["broadcastId"]
        assert (await admin.room_change_of("2121_secret"))["broadcastId"] == broadcast_id

        await as_admin(server, removal, broadcast_id)
        assert (await anonymous.data("rooms"))["roomsChanged"] == {
            "broadcastId": broadcast_id,
            "room": None,
        }
        # Admins still see it, and every change to it.
        assert (await admin.data("rooms"))["roomsChanged"]["room"]["kind"] == "LIVE"
        await post(server, recording("2121_secret", "s1-part", BASE, BASE + 60))
        change = (await admin.data("rooms"))["roomsChanged"]
        assert change["broadcastId"] == broadcast_id
        assert change["room"]["broadcast"]["recordings"] == [{"fileId": "s1-part"}]

        # Anonymous subscribers hear nothing more of it: the next they hear is another room.
        await post(server, push("2121_public", BASE + 100, "s2"))
        change = (await anonymous.data("rooms"))["roomsChanged"]
        assert change["room"]["stream"] == {"streamId": "2121_public"}, change
        assert (await admin.room_change_of("2121_public"))["room"]["kind"] == "LIVE"


async def test_a_slow_subscriber_is_ended_without_holding_back_the_others() -> None:
    subscriptions = SharedSubscriptions(SubscriptionCaps(queue_size=3))
    changes: asyncio.Queue[ExecutionResult] = asyncio.Queue()

    async def start(listening: asyncio.Event) -> AsyncGenerator[ExecutionResult, None]:
        async def results() -> AsyncGenerator[ExecutionResult, None]:
            listening.set()
            while True:
                yield await changes.get()

        return results()

    fast = subscriptions.subscribe("rooms", "10.0.0.1", start)
    slow = subscriptions.subscribe("rooms", "10.0.0.2", start)
    fast_next, slow_next = asyncio.ensure_future(anext(fast)), asyncio.ensure_future(anext(slow))
    with anyio.fail_after(5):
        while subscriptions.subscriber_count < 2:  # noqa: ASYNC110 - nothing to wait on
            await asyncio.sleep(0)
    assert subscriptions.execution_count == 1  # one execution feeds both

    for index in range(100):
        changes.put_nowait(ExecutionResult(data={"change": index}, errors=None))
        with anyio.fail_after(1):
            assert (await fast_next).data == {"change": index}
        fast_next = asyncio.ensure_future(anext(fast))

    # The slow one took the first and then nothing: it is told it fell behind, and ends.
    received = [(await slow_next).data]
    async for result in slow:
        received.append(result.data if not result.errors else result.errors[0].message)
    assert received == [
        {"change": 0},
        "more than 3 changes waited for this subscriber; subscribe again",
    ]
    assert subscriptions.subscriber_count == 1

    fast_next.cancel()  # the subscriber leaves (its WebSocket closed)
    with pytest.raises(asyncio.CancelledError):
        await fast_next
    assert subscriptions.execution_count == 0  # the last subscriber left: it stopped


async def test_a_refused_document_is_refused_to_each_subscriber_and_queries_still_answer(
    catalog: CatalogClient, database_url: str, tmp_path: Path
) -> None:
    async with (
        serving(database_url, tmp_path, **SERVE_SETTINGS) as server,
        Subscriber.connected(server) as subscriber,
    ):
        for key in ("first", "second"):
            await subscriber.subscribe(key, "subscription { roomsChanged { nothingHere } }")
            refused = await subscriber.message()
            assert refused["id"] == key and refused["type"] == "error", refused
            assert "nothingHere" in refused["payload"][0]["message"]

        # Queries over the WebSocket are answered as before, each on its own.
        await subscriber.subscribe("query", "{ rooms { edges { cursor } } }")
        assert await subscriber.data("query") == {"rooms": {"edges": []}}
        assert await subscriber.message() == {"id": "query", "type": "complete"}
