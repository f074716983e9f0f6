"""Push URLs for anchors' apps and play URLs of live rooms."""

import hashlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.catalog_client import ADMIN_TOKEN, BASE, CatalogClient, make_settings, push, recording

pytestmark = pytest.mark.anyio

PUSH_DOMAIN = "2121.livepush.myqcloud.com"
PUSH_KEY = "test-push-key"
PLAY_DOMAIN = "play.example.com"
CREATE = """
mutation Create($streamId: String!, $record: [RecordingFormat!], $interval: Int, $expires: Int) {
  createPushUrl(streamId: $streamId, record: $record, recordInterval: $interval,
                expiresInSeconds: $expires) { url expiresAt warnings }
}
"""


@pytest.fixture
async def configured(catalog: CatalogClient, database_url: str) -> AsyncIterator[CatalogClient]:
    """The app (on the emptied database) with push and play domains configured."""
    settings = make_settings(
        database_url, push_domain=PUSH_DOMAIN, push_key=PUSH_KEY, play_domain=PLAY_DOMAIN
    )
    async with CatalogClient.started(settings) as client:
        yield client


async def create(client: CatalogClient, **variables: Any) -> dict[str, Any]:
    return await client.graphql(CREATE, {"streamId": "2121_alice", **variables}, ADMIN_TOKEN)


async def test_push_url_is_signed_as_tencent_documents(configured: CatalogClient) -> None:
    body = await create(configured, record=["MP4", "HLS"], interval=1800, expires=3600)
    created = body["data"]["createPushUrl"]
    url = urlsplit(created["url"])
    query = dict(parse_qsl(url.query))
    assert (url.scheme, url.netloc, url.path) == ("rtmp", PUSH_DOMAIN, "/live/2121_alice")
    expires_at = int(datetime.fromisoformat(created["expiresAt"]).timestamp())
    assert abs(expires_at - (time.time() + 3600)) < 5
    assert query["txTime"] == format(expires_at, "x")  # lowercase hex of the expiry
    expected = hashlib.md5(f"{PUSH_KEY}2121_alice{query['txTime']}".encode()).hexdigest()
    assert query["txSecret"] == expected
    assert query["record"] == "mp4|hls"
    assert query["record_interval"] == "1800"
    assert any("resolution or orientation change" in w for w in created["warnings"])


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"record": ["HLS"], "interval": 1800}, "recordInterval applies only to FLV and MP4"),
        ({"interval": 1800}, "recordInterval applies only to FLV and MP4"),
        ({"record": ["MP4"], "interval": 7201}, "recordInterval must be 1 to 7200 seconds"),
        ({"record": ["FLV"], "interval": 0}, "recordInterval must be 1 to 7200 seconds"),
        ({"record": ["FLV"], "interval": -60}, "recordInterval must be 1 to 7200 seconds"),
        ({"record": ["AAC"]}, "record accepts FLV, HLS and MP4, not AAC"),
        ({"streamId": "2121 alice/../x"}, "streamId must be 1 to 256 letters"),
        ({"expires": 0}, "expiresInSeconds must be 1 to"),
    ],
)
async def test_tencents_recording_rules_are_enforced_with_clear_errors(
    configured: CatalogClient, variables: dict[str, Any], message: str
) -> None:
    body = await create(configured, **variables)
    assert body["data"] is None
    assert message in body["errors"][0]["message"]


async def test_hls_needs_no_warning_and_a_short_interval_is_flagged(
    configured: CatalogClient,
) -> None:
    hls = (await create(configured, record=["HLS"]))["data"]["createPushUrl"]
    assert hls["warnings"] == [] and "record=hls" in hls["url"]
    short = (await create(configured, record=["FLV"], interval=60))["data"]["createPushUrl"]
    assert any("from 300 seconds" in w for w in short["warnings"])


async def test_the_default_recording_policy_applies_when_none_is_asked_for(
    catalog: CatalogClient, database_url: str
) -> None:
    settings = make_settings(
        database_url,
        push_domain=PUSH_DOMAIN,
        push_key=PUSH_KEY,
        default_record_formats="flv,hls",
        default_record_interval_seconds=5400,
        push_url_expiry_seconds=600,
    )
    async with CatalogClient.started(settings) as client:
        created = (await create(client))["data"]["createPushUrl"]
        query = dict(parse_qsl(urlsplit(created["url"]).query))
        assert (query["record"], query["record_interval"]) == ("flv|hls", "5400")
        expires_at = datetime.fromisoformat(created["expiresAt"]).timestamp()
        assert abs(expires_at - (time.time() + 600)) < 5
        explicit = (await create(client, record=["MP4"]))["data"]["createPushUrl"]
        assert "record=mp4" in explicit["url"] and "record_interval" not in explicit["url"]


async def test_push_urls_are_for_admins_only(configured: CatalogClient) -> None:
    body = await configured.graphql(CREATE, {"streamId": "2121_alice"})
    assert body["errors"][0]["message"] == "this operation needs the admin bearer token"
    assert body["data"] is None


async def test_push_urls_need_a_push_domain_and_key(catalog: CatalogClient) -> None:
    body = await create(catalog)
    assert body["errors"][0]["message"] == (
        "push URLs are disabled: PUSH_DOMAIN and PUSH_KEY are not configured"
    )


async def test_the_push_key_never_reaches_logs_or_responses(
    configured: CatalogClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="replay_catalog")
    body = await create(configured, record=["HLS"])
    assert PUSH_KEY not in str(body) and PUSH_KEY not in caplog.text


LIVE_ROOMS = """{ rooms { edges { node { kind playbackUrl livePlayUrls { flv hls rtmp }
  stream { streamId isLive livePlayUrls { hls } } } } } }"""


async def test_live_rooms_show_play_urls_built_from_the_play_domain(
    configured: CatalogClient,
) -> None:
    await configured.send(push("2121_alice", BASE, "s1"))
    await configured.send(recording("2121_bob", "f1", BASE, BASE + 60))
    live, replay = [edge["node"] for edge in (await configured.data(LIVE_ROOMS))["rooms"]["edges"]]
    assert live["kind"] == "LIVE"
    assert live["livePlayUrls"] == {
        "flv": f"https://{PLAY_DOMAIN}/live/2121_alice.flv",
        "hls": f"https://{PLAY_DOMAIN}/live/2121_alice.m3u8",
        "rtmp": f"rtmp://{PLAY_DOMAIN}/live/2121_alice",
    }
    assert live["playbackUrl"] == f"https://{PLAY_DOMAIN}/live/2121_alice.m3u8"
    assert live["stream"]["livePlayUrls"] == {"hls": live["livePlayUrls"]["hls"]}
    assert replay["kind"] == "REPLAY" and replay["livePlayUrls"] is None
    assert replay["stream"]["livePlayUrls"] is None
    assert replay["playbackUrl"].endswith("/f1/f0.m3u8")


async def test_without_a_play_domain_live_rooms_have_no_play_urls(catalog: CatalogClient) -> None:
    await catalog.send(push("2121_alice", BASE, "s1"))
    (edge,) = (await catalog.data(LIVE_ROOMS))["rooms"]["edges"]
    assert edge["node"]["livePlayUrls"] is None and edge["node"]["playbackUrl"] is None
