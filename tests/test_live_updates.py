"""Subscriptions over WebSocket (graphql-transport-ws), on one server and across replicas."""

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets

from storage.changefeed import CatalogChange, ChangeFeed, SubscriberTooSlow
from tests.catalog_client import (
    ADMIN_TOKEN,
    BASE,
    CatalogClient,
    cut,
    push,
    recording,
    sign,
)
from tests.conftest import fresh_postgres_database
from tests.servers import Server, serving

pytestmark = pytest.mark.anyio

ROOMS_CHANGED = """subscription { roomsChanged { broadcastId
    room { kind stream { streamId } broadcast { isLive endedAt recordings { fileId } } } } }"""
STREAM_UPDATED = """subscription Stream($streamId: String!) {
    streamUpdated(streamId: $streamId) { streamId isLive currentBroadcast { id } } }"""
BROADCAST_UPDATED = """subscription Broadcast($id: ID!) {
    broadcastUpdated(id: $id) { id isLive title recordings { fileId } } }"""
# Events are dated weeks ago (BASE): rooms without their cut-off stay live.
SERVE_SETTINGS = {"LIVE_SILENCE_SECONDS": "0"}


class Subscriber:
    """One graphql-transport-ws connection."""

    def __init__(self, websocket: Any) -> None:
        self.websocket = websocket

    @classmethod
    @asynccontextmanager
    async def connected(cls, server: Server) -> AsyncIterator["Subscriber"]:
        async with websockets.connect(
            server.websocket_url, subprotocols=["graphql-transport-ws"]
        ) as websocket:
            await websocket.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await websocket.recv())["type"] == "connection_ack"
            yield cls(websocket)

    async def subscribe(
        self, key: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        payload = {"query": query, "variables": variables or {}}
        await self.websocket.send(json.dumps({"id": key, "type": "subscribe", "payload": payload}))

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

    async def room_change_of(self, stream_id: str, seconds: float = 10) -> dict[str, Any]:
        """The next roomsChanged event whose room is on `stream_id`, skipping others."""
        with anyio.fail_after(seconds):
            while True:
                change = (await self.data("rooms"))["roomsChanged"]
                room = change["room"]
                if room is not None and room["stream"]["streamId"] == stream_id:
                    return dict(change)


async def subscriptions_open(server: Server, count: int) -> None:
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
