"""Query plans: a document Strawberry has run once runs again from a compiled plan, and
every answer is byte for byte the one Strawberry itself gives."""

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.catalog_client import (
    ADMIN_TOKEN,
    BASE,
    STREAM_CATALOG,
    CatalogClient,
    cut,
    make_settings,
    push,
    recording,
    screenshot,
)

pytestmark = pytest.mark.anyio

# The app's room list, and more: every field of a room and of what it shows.
ROOM_LIST = """query Rooms {
  rooms(first: 20) {
    edges { cursor node {
      kind title coverUrl playbackUrl live: livePlayUrls { flv hls rtmp }
      anchor { id userId nickname avatarUrl isLive replayCount }
      stream { id streamId isLive liveUrls: livePlayUrls { hls } }
      broadcast { id isLive startedAt endedAt durationSeconds title featured hidden
        deletedAt playbackUrl
        recordings { id fileId format videoUrl videoId startTime endTime fileSize } }
    } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""

FRAGMENTS = """
query Fragments {
  first: rooms(first: 2) { edges { node { ...RoomCard } } }
  replays: rooms(first: 3, kind: REPLAY) {
    __typename
    edges { node { ...RoomCard broadcast { ... on Broadcast { featured hidden } } } }
    edges { node { kind title } }
  }
}
fragment RoomCard on Room {
  __typename kind coverUrl liveAndReplay: playbackUrl
  broadcast { ...Times id isLive recordings { ... on RecordingFile { fileId } } }
  broadcast { title }
}
fragment Times on Broadcast { startedAt endedAt ... on Node { id } }
"""

PAGES = """query Pages($first: Int, $after: String, $kind: RoomKind, $anchor: String) {
  rooms(first: $first, after: $after, kind: $kind, anchor: $anchor) {
    edges { cursor node { kind stream { streamId } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""

ANCHOR_PROFILE = """query Profile($userId: String!) {
  anchor(userId: $userId) {
    id userId nickname avatarUrl isLive replayCount replayDurationSeconds
    streams { id streamId isLive livePlayUrls { flv hls rtmp } currentBroadcast { id } }
    replays(first: 2) {
      edges { cursor node {
        id title coverUrl playbackUrl durationSeconds
        timeline { offsetSeconds gapBeforeSeconds startTime endTime recording { fileId } }
        mp4: timeline(format: MP4) { offsetSeconds recording { fileId format } }
        anchor { userId } stream { streamId }
      } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""

RECORDINGS = """query Files($streamId: String, $format: RecordingFormat) {
  recordingFiles(streamId: $streamId, first: 5, format: $format) {
    edges { node {
      id fileId format videoUrl videoId fileSize startTime endTime durationSeconds
      broadcast { id isLive } stream { streamId anchor { userId } }
    } }
    pageInfo { hasNextPage }
  }
}"""

# Documents plans do not cover: Strawberry answers them every time.
NODE = """query Node($id: ID!) { node(id: $id) { id ... on Broadcast { startedAt } } }"""
DIRECTIVE = """query Directive($withFiles: Boolean!) {
  rooms(first: 3) { edges { node { kind broadcast { recordings @include(if: $withFiles) {
    fileId } } } } } }"""
INTROSPECTION = "{ __schema { queryType { name } } rooms(first: 1) { edges { cursor } } }"


@pytest.fixture
async def sites(database_url: str, catalog: CatalogClient) -> AsyncIterator[Any]:
    """A varied catalog, and two apps on it without response caches: one with query
    plans, one that runs every query through Strawberry."""
    await catalog.data(
        'mutation { upsertAnchor(input: {userId: "alice", nickname: "爱丽丝", '
        'avatarUrl: "https://example.com/a.png", streamIds: ["2121_alice"]}) { userId } }',
        token=ADMIN_TOKEN,
    )
    for index in range(3):  # alice: three replays, one of two HLS parts (stitched), MP4s
        start = BASE + index * 10_000
        await catalog.send(screenshot("2121_alice", start + 30))
        await catalog.send(recording("2121_alice", f"a{index}", start, start + 600))
        await catalog.send(recording("2121_alice", f"a{index}-mp4", start, start + 600, "mp4"))
        if index == 1:
            await catalog.send(recording("2121_alice", "a1-b", start + 900, start + 1200))
        await catalog.send(cut("2121_alice", start + 1200))
    await catalog.send(push("2121_bob", BASE + 50_000))  # live
    await catalog.send(recording("2121_carol", "c0", BASE + 1000, BASE + 1500, "flv"))
    await catalog.send(cut("2121_carol", BASE + 1500))
    planned_settings = make_settings(
        database_url, response_cache_entries=0, play_domain="play.example.com"
    )
    plain_settings = make_settings(
        database_url,
        response_cache_entries=0,
        graphql_query_plans=False,
        play_domain="play.example.com",
    )
    async with (
        CatalogClient.started(planned_settings) as planned,
        CatalogClient.started(plain_settings) as plain,
    ):
        yield planned, plain


async def plan_runs(client: CatalogClient) -> dict[str, float]:
    text = (await client.http.get("/metrics")).text
    return {
        outcome: float(value)
        for outcome, value in re.findall(
            r'replay_catalog_graphql_query_plans_total\{outcome="(\w+)"\} ([\d.e+]+)', text
        )
    }


async def answers(
    sites: Any, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> tuple[bytes, bytes, dict[str, float]]:
    """(the planned app's answer, Strawberry's answer, the plans that ran for it)."""
    planned, plain = sites
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = {"query": query, "variables": variables or {}}
    before = await plan_runs(planned)
    responses = []
    for client in (planned, plain):
        response = await client.http.post("/graphql", json=request, headers=headers)
        assert response.status_code == 200, response.text
        responses.append(response.content)
    after = await plan_runs(planned)
    ran = {k: after.get(k, 0) - before.get(k, 0) for k in ("ran", "gave_way")}
    return responses[0], responses[1], ran


async def warm(sites: Any, query: str, variables: dict[str, Any] | None = None) -> None:
    """Run a document once, so that the planned app has compiled its plan."""
    await answers(sites, query, variables)


async def first_broadcast_id(sites: Any) -> str:
    planned, _ = sites
    data = await planned.data(
        "{ rooms(first: 1, kind: REPLAY) { edges { node { broadcast { id } } } } }"
    )
    return str(data["rooms"]["edges"][0]["node"]["broadcast"]["id"])


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (ROOM_LIST, None),
        (FRAGMENTS, None),
        (PAGES, {"first": 2}),
        (PAGES, {"first": 1, "kind": "LIVE"}),
        (PAGES, {"first": 5, "anchor": "alice"}),
        (PAGES, {"first": 0}),
        (ANCHOR_PROFILE, {"userId": "alice"}),
        (ANCHOR_PROFILE, {"userId": "nobody"}),
        (STREAM_CATALOG, {"streamId": "2121_alice"}),
        (STREAM_CATALOG, {"streamId": "2121_bob"}),
        (RECORDINGS, {"streamId": "2121_alice", "format": "MP4"}),
        (RECORDINGS, {}),
    ],
)
async def test_a_planned_query_answers_byte_for_byte_as_strawberry_does(
    sites: Any, query: str, variables: dict[str, Any] | None
) -> None:
    await warm(sites, query, variables)
    planned, plain, ran = await answers(sites, query, variables)
    assert b'"errors"' not in plain
    assert planned == plain
    assert ran == {"ran": 1, "gave_way": 0}


async def test_a_plan_serves_every_page_of_a_list_with_the_cursors_strawberry_makes(
    sites: Any,
) -> None:
    await warm(sites, PAGES, {"first": 1})
    after = None
    for _ in range(6):
        planned, plain, ran = await answers(sites, PAGES, {"first": 1, "after": after})
        assert planned == plain and ran["ran"] == 1
        page = (await sites[1].data(PAGES, {"first": 1, "after": after}))["rooms"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert after is not None


async def test_admins_get_hidden_replays_from_a_plan_and_the_public_does_not(
    sites: Any,
) -> None:
    broadcast_id = await first_broadcast_id(sites)
    await sites[0].data(
        "mutation($id: ID!) { curateBroadcast(id: $id, hidden: true) { hidden } }",
        {"id": broadcast_id},
        token=ADMIN_TOKEN,
    )
    for token in (None, ADMIN_TOKEN, None):
        await warm(sites, ROOM_LIST)
        planned, plain, ran = await answers(sites, ROOM_LIST, token=token)
        assert planned == plain and ran["ran"] == 1
        assert (broadcast_id.encode() in planned) is (token is not None)


async def test_a_planned_room_list_shows_an_acknowledged_callback_at_once(sites: Any) -> None:
    await warm(sites, ROOM_LIST)
    assert b"2121_dave" not in (await answers(sites, ROOM_LIST))[0]
    await sites[0].send(push("2121_dave", BASE + 90_000))
    planned, plain, ran = await answers(sites, ROOM_LIST)
    assert b"2121_dave" in planned and planned == plain and ran["ran"] == 1


@pytest.mark.parametrize(
    "variables",
    [
        {"first": 500},  # refused by the resolver
        {"first": "two"},  # not an Int
        {"after": "not a cursor"},
        {"first": 2, "kind": "SOMETIMES"},  # not a RoomKind
    ],
)
async def test_errors_in_a_planned_document_are_strawberrys_errors(
    sites: Any, variables: dict[str, Any]
) -> None:
    await warm(sites, PAGES, {"first": 2})
    planned, plain, ran = await answers(sites, PAGES, variables)
    assert b'"errors"' in plain
    assert planned == plain
    assert ran == {"ran": 0, "gave_way": 1}


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (NODE, None),
        (DIRECTIVE, {"withFiles": True}),
        (DIRECTIVE, {"withFiles": False}),
        (INTROSPECTION, None),
    ],
)
async def test_documents_plans_do_not_cover_are_left_to_strawberry(
    sites: Any, query: str, variables: dict[str, Any] | None
) -> None:
    if query is NODE:
        variables = {"id": await first_broadcast_id(sites)}
    await warm(sites, query, variables)
    planned, plain, ran = await answers(sites, query, variables)
    assert b'"errors"' not in plain
    assert planned == plain
    assert ran == {"ran": 0, "gave_way": 0}
