"""A live room whose cut-off never comes stops being live after the live silence.

Tencent's cut-off (event 0) can be lost for good. These tests date events
relative to the real clock, since silence is measured against it.
"""

import time
from typing import Any

import anyio
import httpx
import pytest

from replay_catalog.app import create_app
from replay_catalog.services import services_of
from tests.catalog_client import CatalogClient, cut, iso, make_settings, push, recording, screenshot

pytestmark = pytest.mark.anyio

HOUR = 3600
SILENCE = 3 * HOUR

BROADCASTS = """
query Broadcasts($streamId: String!) {
  stream(streamId: $streamId) {
    isLive
    currentBroadcast { id }
    broadcasts(first: 10) { edges { node { id isLive startedAt endedAt playbackUrl } } }
  }
}
"""


async def broadcasts_of(catalog: CatalogClient, stream_id: str) -> tuple[bool, list[Any]]:
    """Whether the stream is live, and its broadcasts oldest first."""
    stream = (await catalog.data(BROADCASTS, {"streamId": stream_id}))["stream"]
    nodes = [edge["node"] for edge in reversed(stream["broadcasts"]["edges"])]
    return stream["isLive"], nodes


async def room_kinds(catalog: CatalogClient) -> dict[str, str]:
    return {room["stream"]["streamId"]: room["kind"] for room in await catalog.all_rooms()}


async def test_a_room_silent_longer_than_the_silence_is_not_live_and_late_facts_join_it(
    catalog: CatalogClient, database_url: str
) -> None:
    now = int(time.time())
    settings = make_settings(database_url, live_silence_seconds=SILENCE)
    async with CatalogClient.started(settings) as silent:
        await silent.send_all(
            [
                # Pushed four hours ago; the last sign of life is a file ending 3.5 h ago.
                push("2121_gone", now - 4 * HOUR, "s1"),
                recording("2121_gone", "gone-1", now - 4 * HOUR, now - 7 * HOUR // 2, "mp4"),
                # Pushed four hours ago too, but a screenshot ten minutes ago: still on air.
                push("2121_on", now - 4 * HOUR, "s2"),
                screenshot("2121_on", now - 600),
            ]
        )
        assert await room_kinds(silent) == {"2121_gone": "REPLAY", "2121_on": "LIVE"}
        is_live, [gone] = await broadcasts_of(silent, "2121_gone")
        assert not is_live and not gone["isLive"]
        assert gone["endedAt"] == iso(now - 7 * HOUR // 2) and gone["playbackUrl"]

        # The anchor comes back: a new broadcast, live; the silent one stays a replay.
        await silent.send(push("2121_gone", now - 60, "s3"))
        is_live, [old, new] = await broadcasts_of(silent, "2121_gone")
        assert is_live and new["isLive"] and old["id"] == gone["id"] and not old["isLive"]

        # The lost cut-off arrives after all: it ends the old broadcast where it really
        # ended, in the same broadcast.
        await silent.send(cut("2121_gone", now - 3 * HOUR, "s1"))
        _, [old, new] = await broadcasts_of(silent, "2121_gone")
        assert old["id"] == gone["id"] and old["endedAt"] == iso(now - 3 * HOUR)
        assert new["isLive"]


async def test_a_live_rooms_screenshots_keep_it_live_or_end_it_as_its_whole_history_would(
    catalog: CatalogClient, database_url: str
) -> None:
    """A live room's new screenshot is written from the screenshots from it on, without
    reading the room's earlier facts; what it gives is what regrouping the whole stream
    gives: the latest screenshot is the cover whatever the arrival order, a screenshot
    from before the push starts the broadcast earlier, and a room that went silent
    (stored as live: no sweep ran) and gets only an old screenshot ends at it."""
    now = int(time.time())
    await catalog.send_all(
        [
            push("2121_shots", now - HOUR, "s1"),
            screenshot("2121_shots", now - 60),
            screenshot("2121_shots", now - 600),  # late, and older: not the cover
            push("2121_quiet", now - 5 * HOUR, "s2"),
            push("2121_back", now - 5 * HOUR, "s3"),
        ]
    )
    rooms = await catalog.all_rooms(fields="kind coverUrl stream { streamId }")
    [room] = [r for r in rooms if r["stream"]["streamId"] == "2121_shots"]
    assert room["kind"] == "LIVE" and room["coverUrl"].endswith(f"2121_shots-{now - 60}.jpg")
    await catalog.send(screenshot("2121_shots", now - HOUR - 30))  # before the push
    is_live, [broadcast] = await broadcasts_of(catalog, "2121_shots")
    assert is_live and broadcast["startedAt"] == iso(now - HOUR - 30)

    settings = make_settings(database_url, live_silence_seconds=SILENCE)
    async with CatalogClient.started(settings) as silent:
        await silent.send(screenshot("2121_quiet", now - 4 * HOUR))  # silent since
        await silent.send(screenshot("2121_back", now - 30))  # on air again
        is_live, [quiet] = await broadcasts_of(silent, "2121_quiet")
        assert not is_live and not quiet["isLive"] and quiet["endedAt"] == iso(now - 4 * HOUR)
        is_live, [back] = await broadcasts_of(silent, "2121_back")
        assert is_live and back["isLive"] and back["endedAt"] is None
        kinds = await room_kinds(silent)
        assert kinds["2121_back"] == "LIVE" and "2121_quiet" not in kinds  # no recording


async def test_without_a_silence_a_room_stays_live_until_its_cut_off(
    catalog: CatalogClient,
) -> None:
    now = int(time.time())
    await catalog.send(push("2121_long", now - 30 * HOUR, "s1"))
    assert await room_kinds(catalog) == {"2121_long": "LIVE"}


async def test_serve_ends_a_silent_room_without_any_new_event(
    catalog: CatalogClient, database_url: str
) -> None:
    settings = make_settings(database_url, live_silence_seconds=2, live_sweep_interval_seconds=0.2)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://catalog.test") as http,
    ):
        served = CatalogClient(http, services_of(app).database)
        pushed_at = int(time.time())
        await served.send(push("2121_quiet", pushed_at, "s1"))
        is_live, [broadcast] = await broadcasts_of(served, "2121_quiet")
        assert is_live and broadcast["isLive"]

        with anyio.fail_after(10):
            while is_live:
                await anyio.sleep(0.2)
                is_live, [broadcast] = await broadcasts_of(served, "2121_quiet")
        assert not broadcast["isLive"] and broadcast["endedAt"] == iso(pushed_at)

        # A file of that broadcast, announced late, lands in it and makes it a replay
        # (its end is older than the silence, so it does not make the room live again).
        await served.send(recording("2121_quiet", "quiet-1", pushed_at - 1, pushed_at))
        _, [replay] = await broadcasts_of(served, "2121_quiet")
        assert replay["id"] == broadcast["id"] and replay["playbackUrl"]
        assert await room_kinds(served) == {"2121_quiet": "REPLAY"}
