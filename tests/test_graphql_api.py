"""The GraphQL endpoint: relay ids, the ingestion mutation, error masking, GraphiQL and cost."""

import base64
import json
from typing import Any

import pytest
from sqlalchemy import func, select, update

from storage import InboxEntry, RecordingFile
from tests.catalog_client import BASE, CatalogClient, cut, make_settings, push, recording, sign

pytestmark = pytest.mark.anyio

NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Anchor { userId }
    ... on Stream { streamId }
    ... on Broadcast { startedAt }
    ... on RecordingFile { fileId }
  }
}
"""

IDS = """
query Ids {
  recordingFile(fileId: "f1") {
    id
    stream { id streamId anchor { id userId } }
    broadcast { id startedAt }
  }
}
"""

INGEST = """
mutation Ingest($payload: JSON!) {
  ingestTencentEvent(payload: $payload) { accepted duplicate eventType }
}
"""

FILE_QUERY = 'query { recordingFile(fileId: "f1") { fileId } }'


def global_id(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def one_recorded_broadcast(catalog: CatalogClient) -> dict[str, Any]:
    """The ids of a stream, its anchor, a broadcast and its recording file."""
    await catalog.send(push("2121_alice", BASE, "s1"))
    await catalog.send(cut("2121_alice", BASE + 600, "s1"))
    await catalog.send(recording("2121_alice", "f1", BASE, BASE + 600))
    found = (await catalog.data(IDS))["recordingFile"]
    assert found is not None
    return found  # type: ignore[no-any-return]


async def stored_events(catalog: CatalogClient) -> int:
    rows = await catalog.database.scalars(select(func.count()).select_from(InboxEntry))
    return int(rows[0])


async def test_node_returns_each_type_by_its_global_id(catalog: CatalogClient) -> None:
    found = await one_recorded_broadcast(catalog)
    stream, broadcast = found["stream"], found["broadcast"]

    nodes = {
        found["id"]: {"__typename": "RecordingFile", "fileId": "f1"},
        stream["id"]: {"__typename": "Stream", "streamId": "2121_alice"},
        stream["anchor"]["id"]: {"__typename": "Anchor", "userId": "alice"},
        broadcast["id"]: {"__typename": "Broadcast", "startedAt": broadcast["startedAt"]},
    }
    assert len(nodes) == 4  # four distinct ids
    for node_id, expected in nodes.items():
        node = (await catalog.data(NODE, {"id": node_id}))["node"]
        assert node == {"id": node_id, **expected}


async def test_node_is_null_for_unknown_malformed_or_wrong_type_ids(
    catalog: CatalogClient,
) -> None:
    await one_recorded_broadcast(catalog)
    ids = {
        "unknown-anchor": global_id("Anchor:999999"),
        "unknown-file": global_id("RecordingFile:2"),
        "not-base64": "not an id!",
        "empty": "",
        "no-colon": global_id("Anchor"),
        "not-a-node-type": global_id("Room:1"),
        "root-type": global_id("Query:1"),
        "unknown-type": global_id("Nope:1"),
        "not-a-number": global_id("Anchor:abc"),
        "negative": global_id("Anchor:-1"),
        "beyond-64-bits": global_id("Anchor:99999999999999999999"),
        "spaces": global_id("Anchor: 1"),
    }

    for case, node_id in ids.items():
        assert await catalog.graphql(NODE, {"id": node_id}) == {"data": {"node": None}}, case


@pytest.mark.parametrize("node_id", ["Anchor:\N{SUPERSCRIPT TWO}", "Anchor:\u0661"])
async def test_node_id_with_non_ascii_digits_is_null(catalog: CatalogClient, node_id: str) -> None:
    await one_recorded_broadcast(catalog)

    body = await catalog.graphql(NODE, {"id": global_id(node_id)})

    assert body == {"data": {"node": None}}


async def test_broadcast_is_found_by_its_id_and_not_by_another_types_id(
    catalog: CatalogClient,
) -> None:
    found = await one_recorded_broadcast(catalog)
    query = "query($id: ID!) { broadcast(id: $id) { id startedAt stream { streamId } } }"

    by_broadcast_id = await catalog.data(query, {"id": found["broadcast"]["id"]})
    by_stream_id = await catalog.data(query, {"id": found["stream"]["id"]})
    by_garbage = await catalog.data(query, {"id": "garbage"})

    assert by_broadcast_id["broadcast"] == {
        **found["broadcast"],
        "stream": {"streamId": "2121_alice"},
    }
    assert by_stream_id["broadcast"] is None
    assert by_garbage["broadcast"] is None


async def test_signed_event_is_ingested_by_the_mutation_once(catalog: CatalogClient) -> None:
    event = recording("2121_alice", "f1", BASE, BASE + 600)

    first = await catalog.data(INGEST, {"payload": sign(event)})
    again = await catalog.data(INGEST, {"payload": sign(event)})  # a retry: new t and sign

    expected = {"accepted": True, "eventType": 100}
    assert first["ingestTencentEvent"] == {**expected, "duplicate": False}
    assert again["ingestTencentEvent"] == {**expected, "duplicate": True}
    assert (await catalog.data(FILE_QUERY))["recordingFile"] == {"fileId": "f1"}
    assert await stored_events(catalog) == 1


async def test_mutation_and_callback_route_share_one_inbox(catalog: CatalogClient) -> None:
    event = recording("2121_alice", "f1", BASE, BASE + 600)

    await catalog.send(event)
    through_graphql = await catalog.data(INGEST, {"payload": sign(event)})

    assert through_graphql["ingestTencentEvent"]["duplicate"] is True
    assert await stored_events(catalog) == 1


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (lambda p: p, "missing sign"),
        (lambda p: {**sign(p), "sign": "0" * 32}, "wrong sign"),
        (lambda p: sign(p, key="not-the-key"), "wrong sign"),
        (lambda p: sign(p, expires_in=-5), "expired"),
    ],
    ids=["unsigned", "zero-sign", "other-key", "expired"],
)
async def test_unsigned_or_forged_event_is_refused_by_the_mutation_and_not_stored(
    catalog: CatalogClient, forge: Any, reason: str
) -> None:
    payload = forge(recording("2121_alice", "f1", BASE, BASE + 600))

    body = await catalog.graphql(INGEST, {"payload": payload})

    assert body["data"] is None
    (error,) = body["errors"]
    assert error["message"].startswith("callback refused: ")
    assert reason in error["message"]
    assert (await catalog.data(FILE_QUERY))["recordingFile"] is None
    assert await stored_events(catalog) == 0


async def test_payload_that_is_not_a_json_object_is_refused(catalog: CatalogClient) -> None:
    for payload in ([1, 2], "text", 42, True):
        body = await catalog.graphql(INGEST, {"payload": payload})
        assert body["data"] is None, payload
        assert [e["message"] for e in body["errors"]] == ["payload must be a JSON object"]
    assert await stored_events(catalog) == 0


async def test_unexpected_internal_errors_are_masked_with_an_id_that_is_in_the_log(
    catalog: CatalogClient, caplog: pytest.LogCaptureFixture
) -> None:
    await one_recorded_broadcast(catalog)
    # A row the code cannot represent (a format outside RecordingFormat), put there
    # behind the service's back: reading it fails inside a resolver.
    async with catalog.database.engine.begin() as connection:
        await connection.execute(update(RecordingFile).values(format="WAV"))

    response = await catalog.http.post(
        "/graphql", json={"query": 'query { recordingFile(fileId: "f1") { fileId format } }'}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"recordingFile": None}
    (error,) = body["errors"]
    error_id = error["extensions"]["errorId"]
    assert error["message"] == f"Internal error (id {error_id})."
    assert set(error) <= {"message", "locations", "path", "extensions"}
    for leak in ("WAV", "Traceback", "RecordingFormat", "recording_file", "SELECT", "File "):
        assert leak not in response.text
    (logged,) = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged.levelname == "ERROR" and logged.exc_info is not None


async def test_client_errors_keep_their_message(catalog: CatalogClient) -> None:
    body = await catalog.graphql("query { rooms { edges { nope } } }")

    (error,) = body["errors"]
    assert "nope" in error["message"] and "Room" in error["message"]


async def test_graphiql_is_served_to_browsers(catalog: CatalogClient) -> None:
    response = await catalog.http.get("/graphql", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_query_can_be_sent_with_get(catalog: CatalogClient) -> None:
    await one_recorded_broadcast(catalog)

    response = await catalog.http.get(
        "/graphql", params={"query": "{rooms{edges{node{kind stream{streamId}}}}}"}
    )

    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "rooms": {"edges": [{"node": {"kind": "REPLAY", "stream": {"streamId": "2121_alice"}}}]}
        }
    }


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        ({"first": "two"}, "Int cannot represent non-integer value"),
        ({"first": 2, "kind": "SOMETIMES"}, "does not exist in 'RoomKind'"),
        ({}, "Expected a value of non-null type 'Int!' to be provided"),
    ],
)
async def test_a_variable_of_the_wrong_type_gets_a_clear_error(
    catalog: CatalogClient, variables: dict[str, Any], says: str, caplog: pytest.LogCaptureFixture
) -> None:
    query = """query($first: Int!, $kind: RoomKind) {
      rooms(first: $first, kind: $kind) { edges { cursor } } }"""

    body = await catalog.graphql(query, variables)

    (error,) = body["errors"]
    assert says in error["message"], error
    assert "Internal error" not in error["message"] and "extensions" not in error
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_mutation_cannot_be_sent_with_get(catalog: CatalogClient) -> None:
    payload = sign(recording("2121_alice", "f1", BASE, BASE + 600))
    query = "mutation($p: JSON!) { ingestTencentEvent(payload: $p) { accepted } }"
    variables = json.dumps({"p": payload})

    response = await catalog.http.get("/graphql", params={"query": query, "variables": variables})

    assert response.status_code in (400, 405)
    assert await stored_events(catalog) == 0


ROOM_PAGE = """
query RoomPage($first: Int!) {
  rooms(first: $first) {
    edges { node {
      kind playbackUrl
      anchor { userId nickname }
      stream { streamId isLive }
      broadcast { startedAt recordings { fileId format videoUrl } }
    } }
  }
}
"""


async def test_a_room_list_page_costs_a_few_statements_whatever_its_length(
    catalog: CatalogClient, database_url: str
) -> None:
    for index in range(4):  # live rooms
        await catalog.send(push(f"2121_live{index}", BASE + 10_000 + index))
    for index in range(16):  # replays with two files each
        start = BASE + index * 1000
        await catalog.send(recording(f"2121_replay{index}", f"r{index}", start, start + 600))
        await catalog.send(
            recording(f"2121_replay{index}", f"r{index}-mp4", start, start + 600, "mp4")
        )

    # What computing a page costs: with the response cache off (with it, a miss costs
    # one statement more, the catalog version, and a hit only that one).
    uncached = make_settings(database_url, response_cache_entries=0)
    async with CatalogClient.started(uncached) as computing:
        costs = []
        # Strawberry runs the document first; the next runs are from its query plan.
        for first in (2, 20, 2, 20):
            with computing.counting_statements(selects_only=True) as statements:
                data = await computing.data(ROOM_PAGE, {"first": first})
            assert len(data["rooms"]["edges"]) == first
            costs.append(len(statements))

    assert len(set(costs)) == 1 and costs[0] <= 3, costs
