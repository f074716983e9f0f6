"""Stitched replays: `GET /replays/{broadcast id}.m3u8` plays a broadcast's HLS parts as one.

The parts are served by a VOD emulator on loopback; the app under test is configured
to allow it (VOD_ALLOWED_HOSTS=127.0.0.1, VOD_ALLOW_PRIVATE_ADDRESSES=true), except
where a test checks that the guards hold.
"""

import ipaddress
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strawberry import relay

from domain.stitching import MediaPlaylist, parse_playlist, stitch
from replay_catalog.demo_media import packaged_playlist
from replay_catalog.settings import Settings
from replay_catalog.vod import DEFAULT_VOD_ALLOWED_HOSTS, VodHosts, is_public_address
from resolvers.global_ids import replay_playlist_path
from tests.catalog_client import (
    ADMIN_TOKEN,
    BASE,
    CatalogClient,
    cut,
    make_settings,
    push,
    recording,
)
from tests.hls_parser import InvalidPlaylist, ParsedPlaylist, parse_media_playlist
from tests.vod_emulator import VodEmulator, media_playlist, running_vod_emulator

pytestmark = pytest.mark.anyio

STREAM = "2121_mika"
HLS_MEDIA_TYPE = "application/vnd.apple.mpegurl"
BROADCAST_IDS = """
query BroadcastIds($streamId: String!) {
  stream(streamId: $streamId) { broadcasts(first: 100) { edges { node { id } } } }
}
"""


@asynccontextmanager
async def catalog_fetching_vod(
    database_url: str, **overrides: object
) -> AsyncIterator[CatalogClient]:
    """The app, allowed to fetch playlists from the emulator on loopback unless overridden."""
    vod_settings: dict[str, object] = {
        "vod_allowed_hosts": ["127.0.0.1"],
        "vod_allow_private_addresses": True,
        **overrides,
    }
    async with CatalogClient.started(make_settings(database_url, **vod_settings)) as client:
        yield client


@pytest.fixture
async def vod() -> AsyncIterator[VodEmulator]:
    async with running_vod_emulator() as emulator:
        yield emulator


@pytest.fixture
async def replays(catalog: CatalogClient, database_url: str) -> AsyncIterator[CatalogClient]:
    """The app on the `catalog` fixture's (emptied) database, allowed to reach the emulator."""
    async with catalog_fetching_vod(database_url) as client:
        yield client


async def broadcast_ids(client: CatalogClient, stream_id: str = STREAM) -> list[str]:
    """The global ids of a stream's broadcasts, oldest first, as the GraphQL API gives them."""
    data = await client.data(BROADCAST_IDS, {"streamId": stream_id})
    return [edge["node"]["id"] for edge in reversed(data["stream"]["broadcasts"]["edges"])]


async def only_broadcast_path(client: CatalogClient) -> str:
    (global_id,) = await broadcast_ids(client)
    return f"/replays/{global_id}.m3u8"


async def send_parts(client: CatalogClient, *parts: tuple[str, int, int, str]) -> None:
    """Recording callbacks for HLS parts: (file id, start, end, URL)."""
    for file_id, start, end, url in parts:
        await client.send(recording(STREAM, file_id, start, end, "hls", video_url=url))


def strictly_parsed(response: httpx.Response) -> ParsedPlaylist:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == HLS_MEDIA_TYPE
    return parse_media_playlist(response.text)


async def test_three_hls_parts_with_two_breaks_play_as_one_playlist(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    first = vod.add_media("vod/a1/playlist.m3u8", [10.0, 10.0, 8.52])
    second = vod.add_media("vod/a2/playlist.m3u8", [10.0, 10.48])
    third = vod.add_media("vod/a3/playlist.m3u8", [9.96, 10.0, 4.2])
    await replays.send_all([push(STREAM, BASE, "s1"), cut(STREAM, BASE + 29, "s1")])
    await replays.send_all([push(STREAM, BASE + 120, "s2"), cut(STREAM, BASE + 141, "s2")])
    await replays.send_all([push(STREAM, BASE + 300, "s3"), cut(STREAM, BASE + 325, "s3")])
    # Callbacks arrive out of order; an MP4 of the first session is not an HLS part.
    await send_parts(replays, ("a3", BASE + 300, BASE + 325, third))
    await send_parts(
        replays, ("a1", BASE, BASE + 29, first), ("a2", BASE + 120, BASE + 141, second)
    )
    await replays.send(recording(STREAM, "m1", BASE, BASE + 29, "mp4"))

    response = await replays.http.get(await only_broadcast_path(replays))

    playlist = strictly_parsed(response)
    assert playlist.playlist_type == "VOD" and playlist.ended
    assert playlist.discontinuities == 2
    assert [segment.discontinuity for segment in playlist.segments] == [
        False, False, False, True, False, True, False, False,
    ]  # fmt: skip
    assert playlist.target_duration == 11  # ceil(10.48)
    assert playlist.version == 3
    assert playlist.duration == pytest.approx(28.52 + 20.48 + 24.16)
    paths = [urlsplit(segment.uri).path for segment in playlist.segments]
    assert paths == [
        "/vod/a1/playlist_0.ts", "/vod/a1/playlist_1.ts", "/vod/a1/playlist_2.ts",
        "/vod/a2/playlist_0.ts", "/vod/a2/playlist_1.ts",
        "/vod/a3/playlist_0.ts", "/vod/a3/playlist_1.ts", "/vod/a3/playlist_2.ts",
    ]  # fmt: skip
    assert all(segment.uri.startswith(vod.url("vod/")) for segment in playlist.segments)
    assert playlist.segments[0].uri.endswith("playlist_0.ts?start=0&end=1179999&type=mpegts")


async def test_a_single_hls_part_is_served_as_a_playlist_too(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    url = vod.add_media("vod/one/playlist.m3u8", [10.0, 6.0])
    await send_parts(replays, ("one", BASE, BASE + 16, url))
    playlist = strictly_parsed(await replays.http.get(await only_broadcast_path(replays)))
    assert (len(playlist.segments), playlist.discontinuities, playlist.ended) == (2, 0, True)


async def test_a_master_playlist_part_plays_its_highest_bandwidth_variant(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    first = vod.add_media("vod/b1/playlist.m3u8", [10.0, 10.0])
    master = vod.add_master(
        "vod/b2/master.m3u8", {"low/index.m3u8": 800_000, "high/index.m3u8": 2_400_000}
    )
    vod.add_media("vod/b2/high/index.m3u8", [6.0, 6.0, 6.0])
    vod.add_media("vod/b2/low/index.m3u8", [6.0])
    await send_parts(replays, ("b1", BASE, BASE + 20, first), ("b2", BASE + 60, BASE + 78, master))
    path = await only_broadcast_path(replays)

    playlist = strictly_parsed(await replays.http.get(path))

    assert [urlsplit(segment.uri).path for segment in playlist.segments[2:]] == [
        f"/vod/b2/high/index_{i}.ts" for i in range(3)
    ]
    assert playlist.discontinuities == 1
    assert vod.fetches("vod/b2/low/index.m3u8") == 0


async def test_uris_resolve_against_where_a_redirect_led(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    vod.add_media("vod/moved/c1.m3u8", [10.0])
    url = vod.add_redirect("vod/c1/playlist.m3u8", "/vod/moved/c1.m3u8")
    await send_parts(replays, ("c1", BASE, BASE + 10, url))
    playlist = strictly_parsed(await replays.http.get(await only_broadcast_path(replays)))
    assert urlsplit(playlist.segments[0].uri).path == "/vod/moved/c1_0.ts"


async def test_an_ended_broadcasts_playlist_is_cached_and_revalidated_by_etag(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    first = vod.add_media("vod/d1/playlist.m3u8", [10.0])
    second = vod.add_media("vod/d2/playlist.m3u8", [10.0])
    await send_parts(replays, ("d1", BASE, BASE + 10, first), ("d2", BASE + 60, BASE + 70, second))
    path = await only_broadcast_path(replays)

    served = await replays.http.get(path)
    etag = served.headers["etag"]
    assert served.status_code == 200 and etag.startswith('"')
    assert served.headers["cache-control"] == "public, max-age=86400"

    revalidated = await replays.http.get(path, headers={"If-None-Match": etag})
    assert revalidated.status_code == 304 and revalidated.content == b""
    assert revalidated.headers["etag"] == etag
    again = await replays.http.get(path, headers={"If-None-Match": '"something-else"'})
    assert again.status_code == 200 and again.text == served.text
    assert (vod.fetches("vod/d1/playlist.m3u8"), vod.fetches("vod/d2/playlist.m3u8")) == (1, 1)


async def test_a_late_part_gives_an_ended_broadcast_a_new_playlist(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    first = vod.add_media("vod/e1/playlist.m3u8", [10.0])
    late = vod.add_media("vod/e2/playlist.m3u8", [10.0])
    await send_parts(replays, ("e1", BASE, BASE + 10, first))
    path = await only_broadcast_path(replays)
    before = await replays.http.get(path)

    await send_parts(replays, ("e2", BASE + 60, BASE + 70, late))
    after = await replays.http.get(path, headers={"If-None-Match": before.headers["etag"]})

    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert len(strictly_parsed(after).segments) == 2


async def test_a_live_broadcast_is_fetched_afresh_and_left_open(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    first = vod.add_media("vod/f1/playlist.m3u8", [10.0, 10.0])
    second = vod.add_media("vod/f2/playlist.m3u8", [10.0])
    await replays.send(push(STREAM, BASE, "s1"))  # no cut-off: still on air
    await send_parts(replays, ("f1", BASE, BASE + 20, first), ("f2", BASE + 80, BASE + 90, second))
    path = await only_broadcast_path(replays)

    responses = [await replays.http.get(path) for _ in range(2)]

    for response in responses:
        playlist = strictly_parsed(response)
        assert playlist.playlist_type is None and not playlist.ended
        assert (len(playlist.segments), playlist.discontinuities) == (3, 1)
        assert response.headers["cache-control"] == "no-store"
    assert (vod.fetches("vod/f1/playlist.m3u8"), vod.fetches("vod/f2/playlist.m3u8")) == (2, 2)


async def test_a_part_that_cannot_be_fetched_fails_the_playlist_naming_the_part(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    first = vod.add_media("vod/g1/playlist.m3u8", [10.0])
    broken = vod.add_failure("vod/g2/playlist.m3u8", 500)
    third = vod.add_media("vod/g3/playlist.m3u8", [10.0])
    await send_parts(
        replays,
        ("g1", BASE, BASE + 10, first),
        ("g2", BASE + 60, BASE + 70, broken),
        ("g3", BASE + 120, BASE + 130, third),
    )
    path = await only_broadcast_path(replays)

    failed = await replays.http.get(path)

    assert failed.status_code == 502
    assert failed.text == (
        f"replay unavailable: part 2 of 3 (file g2) could not be fetched: "
        f"127.0.0.1:{vod.port} answered HTTP 500"
    )
    # A failure is not remembered: once the part is back, the replay plays whole.
    vod.add_media("vod/g2/playlist.m3u8", [10.0])
    assert len(strictly_parsed(await replays.http.get(path)).segments) == 3


async def test_a_part_that_is_not_a_playlist_fails_the_playlist(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    url = vod.add_text("vod/h1/playlist.m3u8", "<html>an error page</html>")
    await send_parts(replays, ("h1", BASE, BASE + 10, url))
    failed = await replays.http.get(await only_broadcast_path(replays))
    assert failed.status_code == 502
    assert failed.text == (
        "replay unavailable: part 1 of 1 (file h1) is not a usable HLS playlist: "
        "it does not start with #EXTM3U"
    )


async def test_a_redirect_to_a_host_outside_the_allow_list_is_not_followed(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    vod.add_media("vod/elsewhere.m3u8", [10.0])
    url = vod.add_redirect("vod/i1/playlist.m3u8", vod.url("vod/elsewhere.m3u8", host="localhost"))
    await send_parts(replays, ("i1", BASE, BASE + 10, url))
    failed = await replays.http.get(await only_broadcast_path(replays))
    assert failed.status_code == 502
    assert "localhost is not an allowed VOD host" in failed.text
    assert vod.fetches("vod/i1/playlist.m3u8") == 1
    assert vod.fetches("vod/elsewhere.m3u8") == 0


async def test_a_host_outside_the_allow_list_is_never_contacted(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    vod.add_media("vod/j1/playlist.m3u8", [10.0])
    url = vod.url("vod/j1/playlist.m3u8", host="localhost")
    await send_parts(replays, ("j1", BASE, BASE + 10, url))
    failed = await replays.http.get(await only_broadcast_path(replays))
    assert failed.status_code == 502
    assert "part 1 of 1 (file j1) could not be fetched: localhost is not an allowed VOD host" in (
        failed.text
    )
    assert sum(vod.requests.values()) == 0


async def test_loopback_addresses_are_refused_unless_explicitly_allowed(
    catalog: CatalogClient, database_url: str, vod: VodEmulator
) -> None:
    url = vod.add_media("vod/k1/playlist.m3u8", [10.0])
    await catalog.send(recording(STREAM, "k1", BASE, BASE + 10, "hls", video_url=url))
    async with catalog_fetching_vod(database_url, vod_allow_private_addresses=False) as guarded:
        failed = await guarded.http.get(await only_broadcast_path(guarded))
    assert failed.status_code == 502
    assert "127.0.0.1 resolves to a private or loopback address" in failed.text
    assert sum(vod.requests.values()) == 0


MALFORMED_HOSTS = {
    "empty-label": "http://a..vod2.myqcloud.com/x.m3u8",
    "empty-label-https": "https://a..vod2.myqcloud.com/x.m3u8",
    "two-trailing-dots": "http://a.vod2.myqcloud.com../x.m3u8",
    "label-over-63": f"http://{'a' * 64}.vod2.myqcloud.com/x.m3u8",
    "space": "http://a b.vod2.myqcloud.com/x.m3u8",
}


@pytest.mark.parametrize("url", MALFORMED_HOSTS.values(), ids=MALFORMED_HOSTS.keys())
async def test_a_part_whose_host_is_not_a_valid_name_fails_the_playlist_with_502(
    catalog: CatalogClient, url: str
) -> None:
    # The catalog fixture keeps the default allow-list, which these hosts' suffix is on.
    await catalog.send(recording(STREAM, "q1", BASE, BASE + 10, "hls", video_url=url))
    failed = await catalog.http.get(await only_broadcast_path(catalog))
    assert failed.status_code == 502
    assert failed.text.startswith("replay unavailable: part 1 of 1 (file q1) could not be fetched")
    assert "is not a valid host name" in failed.text


async def test_a_redirect_to_a_malformed_host_fails_the_playlist_with_502(
    catalog: CatalogClient, database_url: str, vod: VodEmulator
) -> None:
    url = vod.add_redirect("vod/r1/playlist.m3u8", MALFORMED_HOSTS["empty-label"])
    await catalog.send(recording(STREAM, "r1", BASE, BASE + 10, "hls", video_url=url))
    allowed = ["127.0.0.1", *DEFAULT_VOD_ALLOWED_HOSTS]
    async with catalog_fetching_vod(database_url, vod_allowed_hosts=allowed) as client:
        failed = await client.http.get(await only_broadcast_path(client))
    assert failed.status_code == 502
    assert "a..vod2.myqcloud.com is not a valid host name" in failed.text


# IPv6 addresses that carry a private IPv4 address (or a private IPv6 range) which
# Python 3.11's `is_global` calls global.
DISGUISED_PRIVATE_ADDRESSES = {
    "ipv4-compatible-loopback": "::7f00:1",
    "nat64-of-10.0.0.1": "64:ff9b::a00:1",
    "6to4-of-10.0.0.1": "2002:a00:1::",
    "site-local": "fec0::1",
    "nat64-local-use": "64:ff9b:1::a00:1",
}


@pytest.mark.parametrize(
    "address", DISGUISED_PRIVATE_ADDRESSES.values(), ids=DISGUISED_PRIVATE_ADDRESSES.keys()
)
async def test_ipv6_addresses_that_embed_a_private_address_are_refused(
    catalog: CatalogClient, database_url: str, address: str
) -> None:
    url = f"http://[{address}]/vod/s1/playlist.m3u8"
    await catalog.send(recording(STREAM, "s1", BASE, BASE + 10, "hls", video_url=url))
    async with catalog_fetching_vod(
        database_url,
        vod_allowed_hosts=[address],
        vod_allow_private_addresses=False,
        vod_fetch_timeout_seconds=2,
    ) as guarded:
        failed = await guarded.http.get(await only_broadcast_path(guarded))
    assert failed.status_code == 502
    assert f"{address} resolves to a private or loopback address" in failed.text


@pytest.mark.parametrize("streamed", [False, True], ids=["declared", "streamed"])
async def test_an_oversized_playlist_is_refused(
    catalog: CatalogClient, database_url: str, vod: VodEmulator, streamed: bool
) -> None:
    huge = media_playlist("playlist", [10.0] * 200)
    assert len(huge) > 8192
    url = vod.add_text("vod/l1/playlist.m3u8", huge, streamed=streamed)
    await catalog.send(recording(STREAM, "l1", BASE, BASE + 2000, "hls", video_url=url))
    async with catalog_fetching_vod(database_url, vod_max_playlist_bytes=8192) as small:
        failed = await small.http.get(await only_broadcast_path(small))
    assert failed.status_code == 502
    assert failed.text.endswith(f"127.0.0.1:{vod.port} is larger than 8192 bytes")


async def test_a_part_that_does_not_answer_in_time_fails_the_playlist(
    catalog: CatalogClient, database_url: str, vod: VodEmulator
) -> None:
    url = vod.add_slow("vod/m1/playlist.m3u8", seconds=5)
    await catalog.send(recording(STREAM, "m1", BASE, BASE + 10, "hls", video_url=url))
    async with catalog_fetching_vod(database_url, vod_fetch_timeout_seconds=0.3) as impatient:
        failed = await impatient.http.get(await only_broadcast_path(impatient))
    assert failed.status_code == 502
    assert "part 1 of 1 (file m1) could not be fetched" in failed.text
    assert "did not answer" in failed.text


async def test_unknown_or_malformed_ids_are_not_found(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    await replays.send(recording(STREAM, "mp4-only", BASE, BASE + 60, "mp4"))
    (mp4_only,) = await broadcast_ids(replays)
    for global_id in [
        "not-an-id",
        str(relay.GlobalID("Stream", "1")),
        str(relay.GlobalID("Broadcast", "999999")),
        str(relay.GlobalID("Broadcast", "99999999999")),
        str(relay.GlobalID("Broadcast", "-1")),
        mp4_only,
    ]:
        response = await replays.http.get(f"/replays/{global_id}.m3u8")
        assert response.status_code == 404, global_id
    missing = await replays.http.get(f"/replays/{mp4_only}.m3u8")
    assert missing.text == "this broadcast has no HLS recording"


async def test_the_stitched_path_is_the_broadcasts_global_id(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    url = vod.add_media("vod/n1/playlist.m3u8", [10.0])
    await send_parts(replays, ("n1", BASE, BASE + 10, url))
    (global_id,) = await broadcast_ids(replays)
    pk = int(relay.GlobalID.from_id(global_id).node_id)
    assert replay_playlist_path(pk) == f"/replays/{global_id}.m3u8"


# Pure stitching and the rules it relies on.


def part(name: str, durations: list[float]) -> MediaPlaylist:
    parsed = parse_playlist(
        media_playlist("seg", durations), f"http://1.vod2.myqcloud.com/{name}/playlist.m3u8"
    )
    assert isinstance(parsed, MediaPlaylist)
    return parsed


@given(
    st.lists(
        st.lists(st.floats(min_value=0.04, max_value=30.0), min_size=1, max_size=6),
        min_size=1,
        max_size=5,
    ),
    st.booleans(),
)
def test_any_stitched_parts_make_a_valid_playlist(
    durations: list[list[float]], ended: bool
) -> None:
    parts = [part(f"p{index}", part_durations) for index, part_durations in enumerate(durations)]
    playlist = parse_media_playlist(stitch(parts, ended=ended))
    assert playlist.ended is ended
    assert playlist.discontinuities == len(parts) - 1
    expected = [segment for stitched in parts for segment in stitched.segments]
    assert [segment.uri for segment in playlist.segments] == [s.uri for s in expected]
    assert [segment.duration for segment in playlist.segments] == [s.duration for s in expected]
    assert playlist.target_duration == max(1, math.ceil(max(s.duration for s in expected)))


def test_an_encryption_key_does_not_carry_over_into_the_next_part() -> None:
    encrypted = parse_playlist(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n"
        '#EXT-X-KEY:METHOD=AES-128,URI="keys/k1.bin",IV=0x0123456789abcdef0123456789abcdef\n'
        "#EXTINF:10.0,\nseg0.ts\n#EXT-X-ENDLIST\n",
        "http://1.vod2.myqcloud.com/p1/playlist.m3u8",
    )
    assert isinstance(encrypted, MediaPlaylist)
    playlist = parse_media_playlist(stitch([encrypted, part("p2", [10.0])], ended=True))
    assert [segment.key for segment in playlist.segments] == ["AES-128", None]
    stitched = stitch([encrypted, part("p2", [10.0])], ended=True)
    assert 'URI="http://1.vod2.myqcloud.com/p1/keys/k1.bin"' in stitched


@pytest.mark.parametrize(
    ("playlist", "reason"),
    [
        ("#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://h/a.ts\n", "not #EXTM3U"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n#EXT-X-ENDLIST\n", "inside a segment"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n", "has no URI"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:10\nhttp://h/a.ts\n", "without #EXTINF"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:11,\nhttp://h/a.ts\n", "over the target"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\na.ts\n", "not an absolute"),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:10,\nhttp://h/a.ts\n",
            "without #EXT-X-ENDLIST",
        ),
        ("#EXTM3U\n#EXTINF:10,\nhttp://h/a.ts\n", "no #EXT-X-TARGETDURATION"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:9.5,\nhttp://h/a.ts\n", "version 3"),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttp://h/a.m3u8\n",
            "master playlist tag",
        ),
    ],
)
def test_the_strict_parser_refuses_what_players_may_refuse(playlist: str, reason: str) -> None:
    with pytest.raises(InvalidPlaylist, match=reason):
        parse_media_playlist(playlist)


def test_the_allow_list_matches_exact_hosts_and_subdomains_of_suffixes() -> None:
    hosts = VodHosts([".vod2.myqcloud.com", "cdn.example.com"])
    assert hosts.allows("1252033264.vod2.myqcloud.com")
    assert hosts.allows("1252033264.VOD2.myqcloud.com.")
    assert hosts.allows("cdn.example.com")
    assert not hosts.allows("vod2.myqcloud.com.attacker.net")
    assert not hosts.allows("evilvod2.myqcloud.com")
    assert not hosts.allows("vod2.myqcloud.com")
    assert not hosts.allows("x.cdn.example.com")


def test_only_public_addresses_are_public() -> None:
    unspecified = "0.0.0.0"  # noqa: S104 - an address to refuse, not to bind
    non_public = [
        "127.0.0.1", "10.1.2.3", "192.168.1.1", "169.254.169.254", "100.64.0.1", "224.0.0.1",
        unspecified, "::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        *DISGUISED_PRIVATE_ADDRESSES.values(), "::", "::a9fe:a9fe", "64:ff9b::7f00:1",
        "2002:c0a8:101::1", "2002:7f00:1::", "fec0:1::", "feff::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo: a tunnel to a hidden IPv4 host
    ]  # fmt: skip
    for address in non_public:
        assert not is_public_address(ipaddress.ip_address(address)), address
    public = [
        "119.29.29.29", "2402:4e00::", "::ffff:119.29.29.29", "64:ff9b::771d:1d1d",
        "2002:771d:1d1d::",
    ]  # fmt: skip
    for address in public:
        assert is_public_address(ipaddress.ip_address(address)), address


def test_vod_hosts_are_read_comma_separated_and_default_to_tencents_domains(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VOD_ALLOWED_HOSTS", raising=False)
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert defaults.vod_allowed_hosts == list(DEFAULT_VOD_ALLOWED_HOSTS)
    monkeypatch.setenv("VOD_ALLOWED_HOSTS", " .vod2.myqcloud.com, cdn.example.com ,")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.vod_allowed_hosts == [".vod2.myqcloud.com", "cdn.example.com"]


async def test_a_hidden_broadcast_has_no_public_replay(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    url = vod.add_media("vod/o1/playlist.m3u8", [10.0])
    await send_parts(replays, ("o1", BASE, BASE + 10, url))
    path = await only_broadcast_path(replays)
    global_id = path.removeprefix("/replays/").removesuffix(".m3u8")
    assert (await replays.http.get(path)).status_code == 200
    await replays.data(
        "mutation($id: ID!) { curateBroadcast(id: $id, hidden: true) { hidden } }",
        {"id": global_id},
        token=ADMIN_TOKEN,
    )
    assert (await replays.http.get(path)).status_code == 404


PLAYBACK = """
query Playback($streamId: String!) {
  stream(streamId: $streamId) { broadcasts(first: 1) { edges { node {
    id playbackUrl
    timeline { recording { fileId format } startTime endTime offsetSeconds gapBeforeSeconds }
    mp4: timeline(format: MP4) { recording { fileId } gapBeforeSeconds }
  } } } }
  rooms { edges { node { playbackUrl } } }
}
"""


async def playback(client: CatalogClient) -> tuple[dict[str, object], list[str]]:
    data = await client.data(PLAYBACK, {"streamId": STREAM})
    (edge,) = data["stream"]["broadcasts"]["edges"]
    return edge["node"], [room["node"]["playbackUrl"] for room in data["rooms"]["edges"]]


async def test_a_replay_of_several_hls_parts_plays_the_stitched_playlist_and_shows_its_breaks(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    urls = [vod.add_media(f"vod/b{i}/playlist.m3u8", [10.0, 10.0]) for i in range(3)]
    await replays.send_all([push(STREAM, BASE, "s1"), cut(STREAM, BASE + 20, "s1")])
    await replays.send_all([push(STREAM, BASE + 80, "s2"), cut(STREAM, BASE + 100, "s2")])
    await replays.send_all([push(STREAM, BASE + 250, "s3"), cut(STREAM, BASE + 270, "s3")])
    await send_parts(
        replays,
        ("b0", BASE, BASE + 20, urls[0]),
        ("b1", BASE + 80, BASE + 100, urls[1]),
        ("b2", BASE + 250, BASE + 270, urls[2]),
    )
    await replays.send(recording(STREAM, "m1", BASE, BASE + 20, "mp4"))
    await replays.send(recording(STREAM, "m2", BASE + 80, BASE + 100, "mp4"))

    broadcast, room_urls = await playback(replays)
    assert broadcast["playbackUrl"] == f"http://catalog.test/replays/{broadcast['id']}.m3u8"
    assert room_urls == [broadcast["playbackUrl"]]
    timeline = broadcast["timeline"]
    assert [(p["recording"]["fileId"], p["gapBeforeSeconds"]) for p in timeline] == [
        ("b0", 0),
        ("b1", 60),
        ("b2", 150),
    ]
    assert [p["offsetSeconds"] for p in timeline] == [0, 80, 250]
    assert {p["recording"]["format"] for p in timeline} == {"HLS"}
    assert [(p["recording"]["fileId"], p["gapBeforeSeconds"]) for p in broadcast["mp4"]] == [
        ("m1", 0),
        ("m2", 60),
    ]

    playlist = strictly_parsed(await replays.http.get(urlsplit(broadcast["playbackUrl"]).path))
    assert playlist.discontinuities == 2 and len(playlist.segments) == 6


async def test_a_replay_of_one_hls_part_plays_that_part(
    replays: CatalogClient, vod: VodEmulator
) -> None:
    url = vod.add_media("vod/one/playlist.m3u8", [10.0])
    await send_parts(replays, ("one", BASE, BASE + 10, url))
    broadcast, room_urls = await playback(replays)
    assert broadcast["playbackUrl"] == url and room_urls == [url]
    assert [p["gapBeforeSeconds"] for p in broadcast["timeline"]] == [0]


async def test_stitched_links_use_the_configured_public_address(
    catalog: CatalogClient, database_url: str, vod: VodEmulator
) -> None:
    async with catalog_fetching_vod(
        database_url, public_base_url="https://replays.example.com/"
    ) as client:
        urls = [vod.add_media(f"vod/p{i}/playlist.m3u8", [10.0]) for i in range(2)]
        await send_parts(
            client, ("p0", BASE, BASE + 10, urls[0]), ("p1", BASE + 60, BASE + 70, urls[1])
        )
        broadcast, _ = await playback(client)
        assert broadcast["playbackUrl"] == (
            f"https://replays.example.com/replays/{broadcast['id']}.m3u8"
        )


# The demo's parts: real HLS playlists shipped in the package (replay_catalog/static/demo-media).
DEMO_PARTS = ("part-1.m3u8", "part-2.m3u8")


async def test_the_demos_packaged_parts_are_read_from_the_package_without_a_request(
    catalog: CatalogClient, vod: VodEmulator
) -> None:
    # The default guard (Tencent's hosts only, no private addresses), and something else
    # answering at the very URLs the parts name: it is never asked.
    first, second = (vod.add_media(f"static/demo-media/{name}", [10.0]) for name in DEMO_PARTS)
    await send_parts(catalog, ("d1", BASE, BASE + 6, first), ("d2", BASE + 60, BASE + 66, second))

    playlist = strictly_parsed(await catalog.http.get(await only_broadcast_path(catalog)))

    assert sum(vod.requests.values()) == 0
    assert playlist.duration == pytest.approx(12.0) and playlist.discontinuities == 1
    uris = [segment.uri for segment in playlist.segments]
    assert uris == [vod.url(f"static/demo-media/part-{p}-{n}.ts") for p in (1, 2) for n in range(3)]
    # The service itself serves those segments, as MPEG transport streams.
    segment = await catalog.http.get(urlsplit(uris[3]).path)
    assert segment.status_code == 200 and segment.headers["content-type"] == "video/mp2t"
    assert segment.content[0] == 0x47  # the MPEG-TS sync byte


NEAR_MISSES = {
    "another-file": "static/demo-media/part-3.m3u8",
    "not-a-playlist": "static/demo-media/recording.mp4",
    "subfolder": "static/demo-media/old/part-1.m3u8",
    "elsewhere": "vod/static/demo-media/part-1.m3u8",
    "query": "static/demo-media/part-1.m3u8?token=1",
    "percent-encoded": "static/demo-media/part%2D1.m3u8",
    "dot-segments": "static/demo-media/../demo-media/part-1.m3u8",
}


@pytest.mark.parametrize("path", NEAR_MISSES.values(), ids=NEAR_MISSES.keys())
def test_only_the_demos_own_playlists_are_read_from_the_package(path: str) -> None:
    assert packaged_playlist(f"http://127.0.0.1:8000/{path}") is None
    assert packaged_playlist("http://127.0.0.1:8000/static/demo-media/part-1.m3u8")


async def test_a_url_that_only_resembles_the_demos_media_is_still_guarded(
    catalog: CatalogClient, database_url: str, vod: VodEmulator
) -> None:
    await send_parts(catalog, ("n1", BASE, BASE + 10, vod.url(NEAR_MISSES["another-file"])))
    # Its host allowed, so it is the private-address check that refuses it.
    async with catalog_fetching_vod(database_url, vod_allow_private_addresses=False) as guarded:
        failed = await guarded.http.get(await only_broadcast_path(guarded))
    assert failed.status_code == 502
    assert "127.0.0.1 resolves to a private or loopback address" in failed.text
    assert sum(vod.requests.values()) == 0


async def test_a_demo_path_with_credentials_is_not_read_from_the_package(
    catalog: CatalogClient, vod: VodEmulator
) -> None:
    url = vod.url("static/demo-media/part-1.m3u8", host="user:secret@127.0.0.1")
    await send_parts(catalog, ("c1", BASE, BASE + 10, url))
    failed = await catalog.http.get(await only_broadcast_path(catalog))
    assert failed.status_code == 502 and "URLs with credentials are not fetched" in failed.text
    assert sum(vod.requests.values()) == 0
