"""The demo catalog plays offline: its recordings, covers and avatars are media the service
itself serves, and its broadcast that broke and resumed plays as one stitched replay under
the default VOD guard. (tests/test_browser.py plays them in Chromium.)"""

import functools
import logging
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

from replay_catalog.demo import load_demo
from resolvers.ingestion import Ingestor
from tests.catalog_client import ADMIN_TOKEN, CatalogClient, make_settings
from tests.hls_parser import parse_media_playlist
from tests.servers import COMMAND

pytestmark = pytest.mark.anyio

# The address the test client calls the app on (CatalogClient.started).
SERVICE = "http://catalog.test"
MEDIA = f"{SERVICE}/static/demo-media/"
DEMO_URLS = """{
  rooms(first: 100) { edges { node {
    title coverUrl playbackUrl anchor { avatarUrl }
    broadcast { recordings { videoUrl } }
  } } }
}"""
MEDIA_TYPES = {
    "m3u8": "application/vnd.apple.mpegurl",
    "mp4": "video/mp4",
    "flv": "video/x-flv",
    "jpg": "image/jpeg",
    "png": "image/png",
}


async def load(
    catalog: CatalogClient, database_url: str, media_base: str | None = SERVICE
) -> tuple[int, int]:
    """`replay-catalog demo`'s work, on the app's database, with its media on `media_base`."""
    rules = make_settings(database_url).grouping_rules()
    return await load_demo(catalog.database, Ingestor(catalog.database, None, rules), media_base)


async def demo_rooms(catalog: CatalogClient) -> list[dict[str, Any]]:
    return [edge["node"] for edge in (await catalog.data(DEMO_URLS))["rooms"]["edges"]]


def media_urls(rooms: list[dict[str, Any]]) -> set[str]:
    """Every cover, avatar and recording URL the room list gives."""
    urls = {room["coverUrl"] for room in rooms} | {room["anchor"]["avatarUrl"] for room in rooms}
    for room in rooms:
        urls |= {recording["videoUrl"] for recording in room["broadcast"]["recordings"]}
    return urls - {None}


async def test_every_demo_cover_avatar_and_recording_is_media_the_service_serves(
    catalog: CatalogClient, database_url: str
) -> None:
    await load(catalog, database_url)
    rooms = await demo_rooms(catalog)
    urls = media_urls(rooms)
    assert all(url.startswith(MEDIA) for url in urls), urls
    assert {url.rsplit(".", 1)[1] for url in urls} == set(MEDIA_TYPES)
    for url in sorted(urls):
        answer = await catalog.http.get(urlsplit(url).path)
        assert answer.status_code == 200 and answer.content, url
        assert answer.headers["content-type"].startswith(MEDIA_TYPES[url.rsplit(".", 1)[1]])
    # Every room but the unclaimed stream's shows a picture.
    assert sum(room["coverUrl"] is None for room in rooms) == 1


async def test_the_demo_broadcast_that_broke_and_resumed_plays_as_one_stitched_replay(
    catalog: CatalogClient, database_url: str
) -> None:
    await load(catalog, database_url)
    rooms = await demo_rooms(catalog)
    (room,) = [room for room in rooms if room["title"] == "Back after a short break"]
    playback_url = room["playbackUrl"]
    assert isinstance(playback_url, str) and playback_url.startswith(f"{SERVICE}/replays/")

    answer = await catalog.http.get(urlsplit(playback_url).path)

    assert answer.status_code == 200, answer.text
    playlist = parse_media_playlist(answer.text)
    assert playlist.discontinuities == 1 and playlist.ended
    assert playlist.duration == pytest.approx(12.0)
    for segment in playlist.segments:
        assert segment.uri.startswith(MEDIA)
        assert (await catalog.http.get(urlsplit(segment.uri).path)).status_code == 200


async def test_loading_the_demo_again_leaves_its_media_where_it_was_loaded_for(
    catalog: CatalogClient, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    new, _ = await load(catalog, database_url)
    assert new > 0
    rooms = await demo_rooms(catalog)
    with caplog.at_level(logging.WARNING, logger="replay_catalog.demo"):
        again = await load(catalog, database_url, "http://192.0.2.7:8000")
    assert again == (0, new)
    assert await demo_rooms(catalog) == rooms
    assert f"has its media on {SERVICE}, not http://192.0.2.7:8000" in caplog.text


@pytest.mark.parametrize(
    ("public_base_url", "media"),
    [
        (None, "http://127.0.0.1:8000/static/demo-media/"),
        ("https://catalog.example.com/", "https://catalog.example.com/static/demo-media/"),
    ],
    ids=["serve-default-address", "public-base-url"],
)
async def test_the_demo_media_is_on_public_base_url_or_else_where_serve_listens(
    catalog: CatalogClient,
    database_url: str,
    tmp_path: Path,
    public_base_url: str | None,
    media: str,
) -> None:
    env = {name: value for name, value in os.environ.items() if name != "PUBLIC_BASE_URL"}
    env["DATABASE_URL"] = database_url
    if public_base_url is not None:
        env["PUBLIC_BASE_URL"] = public_base_url
    demo = await anyio.to_thread.run_sync(
        functools.partial(
            subprocess.run,
            [*COMMAND, "demo"],
            env=env,
            cwd=tmp_path,  # no .env file
            capture_output=True,
            text=True,
            timeout=120,
        )
    )
    assert demo.returncode == 0, demo.stderr
    urls = media_urls(await demo_rooms(catalog))
    assert urls and all(url.startswith(media) for url in urls), urls


async def test_the_demo_page_can_learn_what_is_switched_off_but_no_secret(tmp_path: Path) -> None:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'off.db'}",
        callback_key=None,
        push_key="push-secret",
        play_domain="play.example.com",
    )
    async with CatalogClient.started(settings) as client:
        answer = await client.http.get("/switched-off")
    assert answer.status_code == 200
    assert answer.json() == {
        "switchedOff": [
            "CALLBACK_KEY is not set: every Tencent callback is refused with 401",
            "PUSH_DOMAIN not set: createPushUrl is refused",
        ]
    }
    assert not any(value in answer.text for value in (ADMIN_TOKEN, "push-secret", "play.example"))
