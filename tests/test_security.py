"""Attacks on the public GraphQL API and the public callback URL, each through HTTP."""

import json
import logging
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import websockets
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    get_introspection_query,
    parse,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from strawberry import relay

import schema.documents
from schema.documents import ParsedDocuments
from schema.limits import measure_fragments, measure_operations
from storage import InboxEntry, RecordingFile
from tests.catalog_client import (
    ADMIN_TOKEN,
    BASE,
    SNAPSHOT_ROOM,
    CatalogClient,
    make_settings,
    push,
    recording,
    sign,
)
from tests.servers import serving

pytestmark = pytest.mark.anyio


def nested_rooms(depth: int) -> str:
    """A legal query that nests anchor -> streams -> broadcasts ... `depth` levels deep."""
    inner = "streamId"
    for _ in range(depth):
        inner = f"streamId anchor {{ streams {{ {inner} }} }}"
    return f'{{ stream(streamId: "x") {{ {inner} }} }}'


def catalog_reads(statements: list[str]) -> list[str]:
    """The statements that read the catalog: without the response cache's version read
    (one small SELECT, shared by concurrent requests) and transaction control."""
    return [
        statement
        for statement in statements
        if "catalog_version" not in statement and statement not in ("BEGIN", "COMMIT")
    ]


async def test_a_deeply_nested_query_is_refused_before_it_runs(catalog: CatalogClient) -> None:
    with catalog.counting_statements() as statements:
        body = await catalog.graphql(nested_rooms(10))
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]
    assert body.get("data") is None
    assert catalog_reads(statements) == []
    assert "errors" not in await catalog.graphql(nested_rooms(3))


async def test_a_query_with_hundreds_of_aliases_is_refused(catalog: CatalogClient) -> None:
    aliases = " ".join(f"a{i}: rooms(first: 100) {{ edges {{ cursor }} }}" for i in range(60))
    with catalog.counting_statements() as statements:
        body = await catalog.graphql(f"{{ {aliases} }}")
    assert body["errors"][0]["message"] == "60 aliases found. Allowed: 30"
    assert catalog_reads(statements) == []


async def test_an_oversized_document_is_refused_by_its_token_count(catalog: CatalogClient) -> None:
    fields = " ".join(["__typename"] * 3000)
    body = await catalog.graphql(f"{{ {fields} }}")
    assert "Document contains more than 2000 tokens" in body["errors"][0]["message"]
    assert body.get("data") is None


async def test_an_oversized_anonymous_document_is_never_parsed_whole(
    catalog: CatalogClient,
) -> None:
    """The response cache looks at anonymous documents (up to 64 KB) before Strawberry
    does: it too stops at GRAPHQL_MAX_TOKENS. Parsed whole, a 64 KB document of 32,000
    tokens took 0.3 s, 16 times a small refused one; stopped at the limit, it costs the
    same. Timed against a small refused query in the same run, so that the bound
    holds on a loaded machine."""

    async def median_seconds(document: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            body = await catalog.graphql(document)
            times.append(time.perf_counter() - started)
            assert "Document contains more than 2000 tokens" in body["errors"][0]["message"]
        return sorted(times)[2]

    small = await median_seconds("{" + " a" * 2_001 + " }")
    large = await median_seconds("{" + " a" * 32_000 + " }")
    assert large < 4 * small, (large, small)


def doubling_document(levels: int, name: str) -> str:
    """A query whose fragments each spread the one before twice: small, refused."""
    fragments = ["fragment F0 on Query { __typename }"] + [
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)
    ]
    return f"query {name} {{ ...F{levels} }} " + " ".join(fragments)


async def test_each_document_is_parsed_once_per_request(
    catalog: CatalogClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The response cache (to tell a query from a mutation) and Strawberry share one parse:
    a refused document costs its parse once, and an app's document none once it is known."""
    parsed: list[str] = []
    real_parse = schema.documents.parse

    def counting_parse(source: str, **options: Any) -> Any:
        parsed.append(source)
        return real_parse(source, **options)

    monkeypatch.setattr(schema.documents, "parse", counting_parse)
    hostile = doubling_document(40, "Bomb")
    assert "fields selected" in (await catalog.graphql(hostile))["errors"][0]["message"]
    assert parsed == [hostile]
    rooms = "query Rooms { rooms(first: 3) { edges { cursor } } }"
    for _ in range(3):
        assert "errors" not in await catalog.graphql(rooms)
    assert parsed == [hostile, rooms]


def test_refused_documents_neither_stay_nor_evict_the_documents_apps_send() -> None:
    documents = ParsedDocuments(valid=4, recent=2)
    app_document = "{ rooms { edges { cursor } } }"
    known = documents.parse(app_document, 2000)
    documents.passed_validation(app_document, 2000)
    for number in range(100):
        documents.parse(doubling_document(20, f"Bomb{number}"), 2000)  # never validated
    assert len(documents) == 1 + 2
    assert documents.parse(app_document, 2000) is known


async def test_introspection_can_be_switched_off(database_url: str) -> None:
    query = "{ __schema { types { name } } }"
    settings = make_settings(database_url, graphql_introspection=False)
    async with CatalogClient.started(settings) as closed:
        body = await closed.graphql(query)
        assert "introspection has been disabled" in body["errors"][0]["message"]
        assert "errors" not in await closed.graphql("{ rooms { edges { cursor } } }")
    async with CatalogClient.started(make_settings(database_url)) as open_catalog:
        assert "errors" not in await open_catalog.graphql(query)


async def test_forged_callbacks_never_touch_the_database(catalog: CatalogClient) -> None:
    forged = {**sign(push("2121_a", BASE)), "sign": "0" * 32}
    with catalog.counting_statements() as statements:
        for _ in range(5):
            assert (await catalog.post_callback(forged)).status_code == 401
        assert (await catalog.http.post("/callbacks/tencent", content=b"[]")).status_code == 400
    assert statements == []


async def test_a_flood_of_refused_callbacks_is_cut_off_with_429(database_url: str) -> None:
    settings = make_settings(database_url, refused_callbacks_per_minute=5)
    async with CatalogClient.started(settings) as catalog:
        forged = {**sign(push("2121_a", BASE)), "sign": "0" * 32}
        statuses = [(await catalog.post_callback(forged)).status_code for _ in range(8)]
        assert statuses == [401] * 5 + [429] * 3
        # Until it slows down, even a good callback from that address waits (Tencent retries).
        assert (await catalog.post_callback(sign(push("2121_a", BASE)))).status_code == 429


async def test_authentic_callbacks_are_never_rate_limited(database_url: str) -> None:
    settings = make_settings(database_url, refused_callbacks_per_minute=2)
    async with CatalogClient.started(settings) as catalog:
        for i in range(10):
            await catalog.send(recording("2121_a", f"f{i}", BASE + i * 60, BASE + i * 60 + 59))


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/html"],
)
async def test_a_callback_in_another_content_type_gets_415(
    catalog: CatalogClient, content_type: str
) -> None:
    response = await catalog.http.post(
        "/callbacks/tencent", content=b"event_type=1", headers={"content-type": content_type}
    )
    assert response.status_code == 415
    assert response.json()["code"] != 0


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain; charset=utf-8", None])
async def test_a_json_callback_labelled_text_plain_or_unlabelled_is_accepted(
    catalog: CatalogClient, content_type: str | None
) -> None:
    """Tencent's senders vary in the content type they set (docs/callbacks.md: the 415 row)."""
    headers = {"content-type": content_type} if content_type else {}
    response = await catalog.http.post(
        "/callbacks/tencent",
        content=json.dumps(sign(push("2121_a", BASE))).encode(),
        headers=headers,
    )
    assert response.status_code == 200
    assert [room["kind"] for room in await catalog.all_rooms()] == ["LIVE"]


async def test_json_with_a_charset_is_a_json_callback(catalog: CatalogClient) -> None:
    response = await catalog.http.post(
        "/callbacks/tencent",
        json=sign(push("2121_a", BASE)),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)//.mp4",
        "data:text/html;base64,PHNjcmlwdD4=",
        "file:///etc/passwd.mp4",
        "//evil.example/x.mp4",
        "https:evil.mp4",
        "ftp://vod.example/x.mp4",
    ],
)
async def test_a_recording_url_that_is_not_http_is_quarantined_never_served(
    catalog: CatalogClient, url: str
) -> None:
    await catalog.send(recording("2121_a", "f1", BASE, BASE + 60, "mp4", video_url=url))
    assert (await catalog.data('{ recordingFile(fileId: "f1") { videoUrl } }')) == {
        "recordingFile": None
    }
    rows = await catalog.database.scalars(select(InboxEntry.outcome))
    assert rows == ["quarantined"]
    assert (await catalog.database.scalars(select(func.count(RecordingFile.id)))) == [0]


async def test_an_avatar_url_that_is_not_http_is_refused(catalog: CatalogClient) -> None:
    body = await catalog.graphql(
        'mutation { upsertAnchor(input: {userId: "u", avatarUrl: "javascript:alert(1)"}) '
        "{ userId } }",
        token=ADMIN_TOKEN,
    )
    assert "avatarUrl must be an http(s) URL" in body["errors"][0]["message"]
    assert (await catalog.data('{ anchor(userId: "u") { userId } }'))["anchor"] is None


async def test_over_long_text_in_a_callback_is_quarantined(catalog: CatalogClient) -> None:
    await catalog.send(push("2121_" + "a" * 300, BASE))
    (entry,) = await catalog.database.scalars(select(InboxEntry))
    assert entry.outcome == "quarantined"
    assert "longer than 256" in (entry.reason or "")


async def test_browsers_from_unlisted_origins_get_no_cors_grant(database_url: str) -> None:
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    async with CatalogClient.started(make_settings(database_url)) as closed:
        answer = await closed.http.options("/graphql", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
    settings = make_settings(database_url, cors_allowed_origins=["https://app.example"])
    async with CatalogClient.started(settings) as opened:
        answer = await opened.http.options("/graphql", headers=preflight)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://app.example"
        other = await opened.http.options(
            "/graphql", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"


async def test_nul_characters_in_lookups_find_nothing_instead_of_failing(
    catalog: CatalogClient,
) -> None:
    data = await catalog.data(
        "query($id: String!) { stream(streamId: $id) { streamId } anchor(userId: $id) { userId }"
        " recordingFile(fileId: $id) { fileId } }",
        {"id": "2121_a\u0000b"},
    )
    assert data == {"stream": None, "anchor": None, "recordingFile": None}


async def test_a_callback_with_nul_characters_is_quarantined_not_retried_forever(
    catalog: CatalogClient,
) -> None:
    await catalog.send({**push("2121_a", BASE), "errmsg": "bad\u0000byte"})
    await catalog.send(push("2121_\u0000b", BASE))
    entries = await catalog.database.scalars(select(InboxEntry).order_by(InboxEntry.id))
    assert [e.outcome for e in entries] == ["quarantined", "quarantined"]
    assert {e.reason for e in entries} == {"the payload contains NUL characters"}
    assert "\u0000" not in str(entries[0].payload)


async def test_an_anchor_profile_with_nul_characters_is_refused_clearly(
    catalog: CatalogClient,
) -> None:
    body = await catalog.graphql(
        "mutation($id: String!) { upsertAnchor(input: {userId: $id}) { userId } }",
        {"id": "a\u0000b"},
        token=ADMIN_TOKEN,
    )
    assert body["errors"][0]["message"] == "text must not contain NUL characters"


async def test_a_flood_of_forged_mutations_is_cut_off_too(database_url: str) -> None:
    settings = make_settings(database_url, refused_callbacks_per_minute=3)
    mutation = "mutation($p: JSON!) { ingestTencentEvent(payload: $p) { accepted } }"
    forged = {**sign(push("2121_a", BASE)), "sign": "0" * 32}
    async with CatalogClient.started(settings) as catalog:
        messages = [
            (await catalog.graphql(mutation, {"p": forged}))["errors"][0]["message"]
            for _ in range(5)
        ]
    assert messages[:3] == ["callback refused: wrong sign"] * 3
    assert messages[3:] == ["too many refused callbacks; slow down"] * 2


async def test_admin_tokens_never_reach_logs_or_responses(
    catalog: CatalogClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="replay_catalog")
    mutation = 'mutation { upsertAnchor(input: {userId: "u"}) { userId } }'
    wrong = await catalog.http.post(
        "/graphql", json={"query": mutation}, headers={"Authorization": "Bearer guess-123"}
    )
    right = await catalog.http.post(
        "/graphql", json={"query": mutation}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert wrong.json()["errors"][0]["message"] == "this operation needs the admin bearer token"
    assert right.json()["data"] == {"upsertAnchor": {"userId": "u"}}
    for text in (caplog.text, wrong.text, right.text):
        assert ADMIN_TOKEN not in text and "guess-123" not in text


# A document over a limit comes back refused within this many seconds, whatever it
# would expand to (before the limits were measured once per fragment, twenty doubling
# fragments took 3 s and forty would have taken days). For the app served in this
# process, the seconds are this process's CPU time: a refusal takes some 0.1 s, and
# wall time once read 2.1 s under CI's load.
REFUSED_WITHIN_SECONDS = 2.0


def doubling_fragments(
    levels: int, on: str = "Room", leaf: str = "kind", inline: bool = False
) -> str:
    """Fragments that each spread the one before twice: a document of `levels` lines
    that expands to 2**levels copies of `leaf` (on the `on` type)."""
    fragments = [f"fragment F0 on {on} {{ {leaf} }}"]
    for level in range(1, levels + 1):
        spread = f"...F{level - 1}"
        twice = f"... on {on} {{ {spread} }} ... {{ {spread} }}" if inline else f"{spread} {spread}"
        fragments.append(f"fragment F{level} on {on} {{ {twice} }}")
    return "\n".join(fragments)


def rooms_with(selection: str, alias: str = "") -> str:
    return f"{alias}rooms(first: 1) {{ edges {{ node {{ {selection} }} }} }}"


async def refused_in_time(
    catalog: CatalogClient, document: str, variables: dict[str, Any] | None = None
) -> str:
    """The one error message a document is refused with; no catalog statement runs."""
    with catalog.counting_statements() as statements:
        started = time.process_time()
        body = await catalog.graphql(document, variables)
        elapsed = time.process_time() - started
    assert elapsed < REFUSED_WITHIN_SECONDS, f"refused after {elapsed:.1f} s of CPU"
    assert body.get("data") is None, body
    assert len(body["errors"]) == 1, body["errors"]
    assert catalog_reads(statements) == []
    return str(body["errors"][0]["message"])


@pytest.mark.parametrize("levels", [20, 40])
async def test_fragments_that_double_at_every_level_are_refused_at_once(
    catalog: CatalogClient, levels: int
) -> None:
    document = f"{{ {rooms_with(f'...F{levels}')} }}\n{doubling_fragments(levels)}"
    message = await refused_in_time(catalog, document)
    expanded = 2**levels + 3 if levels < 29 else "more than 999999999"
    assert message == (
        f"{expanded} fields selected, counting every fragment spread in full. Allowed: 2000"
    )


async def test_doubling_fragments_sent_by_get_are_refused_at_once(catalog: CatalogClient) -> None:
    document = f"{{ {rooms_with('...F40')} }}\n{doubling_fragments(40)}"
    started = time.process_time()
    response = await catalog.http.get("/graphql", params={"query": document})
    assert time.process_time() - started < REFUSED_WITHIN_SECONDS
    assert response.status_code == 200
    assert "fields selected" in response.json()["errors"][0]["message"]


async def test_doubling_through_inline_fragments_is_refused_at_once(
    catalog: CatalogClient,
) -> None:
    document = f"{{ {rooms_with('...F20')} }}\n{doubling_fragments(20, inline=True)}"
    message = await refused_in_time(catalog, document)
    assert message.startswith(f"{2**20 + 3} fields selected")


async def test_doubling_fragments_under_aliases_count_every_alias(catalog: CatalogClient) -> None:
    fragments = doubling_fragments(20, leaf="k: kind")
    document = f"{{ {rooms_with('...F20', 'a: ')} {rooms_with('...F20', 'b: ')} }}\n{fragments}"
    message = await refused_in_time(catalog, document)
    assert message == f"{2 * 2**20 + 2} aliases found. Allowed: 30"


async def test_a_document_expanding_past_the_field_limit_is_refused(
    catalog: CatalogClient,
) -> None:
    """Twelve doubling fragments: no alias, no depth, 4,099 fields once expanded."""
    document = f"{{ {rooms_with('...F12')} }}\n{doubling_fragments(12)}"
    message = await refused_in_time(catalog, document)
    assert message.startswith("4099 fields selected")


async def test_the_field_limit_is_a_setting(database_url: str) -> None:
    settings = make_settings(database_url, graphql_max_fields=50)
    async with CatalogClient.started(settings) as catalog:
        five = f"{{ {rooms_with('...F5')} }}\n{doubling_fragments(5)}"  # 35 fields
        assert "errors" not in await catalog.graphql(five)
        six = f"{{ {rooms_with('...F6')} }}\n{doubling_fragments(6)}"  # 67 fields
        message = await refused_in_time(catalog, six)
        assert message.startswith("67 fields selected") and message.endswith("Allowed: 50")


async def test_doubling_fragments_in_a_mutation_are_refused_before_it_runs(
    catalog: CatalogClient,
) -> None:
    fragments = doubling_fragments(30, on="IngestResult", leaf="accepted")
    document = (
        f"mutation($p: JSON!) {{ ingestTencentEvent(payload: $p) {{ ...F30 }} }}\n{fragments}"
    )
    message = await refused_in_time(catalog, document, {"p": sign(push("2121_a", BASE))})
    assert "fields selected" in message
    assert (await catalog.database.scalars(select(func.count(InboxEntry.id)))) == [0]


async def test_doubling_fragments_in_a_subscription_are_refused(
    catalog: CatalogClient, database_url: str, tmp_path: Path
) -> None:
    document = f"subscription {{ roomsChanged {{ room {{ ...F30 }} }} }}\n{doubling_fragments(30)}"
    async with (
        serving(database_url, tmp_path, LIVE_SILENCE_SECONDS="0") as server,
        websockets.connect(server.websocket_url, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": document}}))
        with anyio.fail_after(REFUSED_WITHIN_SECONDS):
            answer = json.loads(await ws.recv())
    assert answer["type"] == "error", answer
    assert "fields selected" in answer["payload"][0]["message"]


async def test_a_deeply_nested_websocket_message_closes_the_connection_cleanly(
    catalog: CatalogClient, database_url: str, tmp_path: Path
) -> None:
    async with (
        serving(database_url, tmp_path, LIVE_SILENCE_SECONDS="0") as server,
        websockets.connect(server.websocket_url, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(nested_json(100_000))
        with pytest.raises(websockets.ConnectionClosed), anyio.fail_after(5):
            await ws.recv()
        assert ws.close_code == 4400  # graphql-transport-ws: the message is not JSON
        log = server.log.read_text()
    assert "RecursionError" not in log and "Traceback" not in log


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(
            "{" + " rooms { edges { cursor } }" * 280 + " }", id="one-field-280-times-over"
        ),
        pytest.param(
            "{" + " ... on Query { rooms { edges { cursor } } }" * 150 + " }",
            id="in-inline-fragments",
        ),
        pytest.param(
            "{"
            + "".join(f" ...R{i}" for i in range(180))
            + " }"
            + "".join(f" fragment R{i} on Query {{ __typename }}" for i in range(180)),
            id="180-fragments-in-one-place",
        ),
    ],
)
async def test_a_selection_repeated_over_and_over_is_refused_before_validation(
    catalog: CatalogClient, document: str
) -> None:
    """graphql-core compares every pair of same-named fields at one place: 280 copies of
    a field in 2 KB cost it 0.8 s before they were counted and refused."""
    message = await refused_in_time(catalog, document)
    assert "pairs of fields with the same name, or of fragments, to merge" in message


async def test_depth_is_measured_through_fragments_and_inline_fragments(
    catalog: CatalogClient,
) -> None:
    def streams_within_streams(levels: int) -> str:
        """Two levels (anchor, streams) per fragment, each spread twice."""
        fragments = ["fragment S0 on Stream { streamId }"]
        for level in range(1, levels + 1):
            inner = f"anchor {{ streams {{ ...S{level - 1} }} }}"
            fragments.append(
                f"fragment S{level} on Stream {{ ... on Stream {{ {inner} }} {inner} }}"
            )
        return f'{{ stream(streamId: "x") {{ ...S{levels} }} }}\n' + "\n".join(fragments)

    assert "errors" not in await catalog.graphql(streams_within_streams(5))  # 11 levels
    message = await refused_in_time(catalog, streams_within_streams(6))  # 13 levels
    assert message == "'anonymous' exceeds maximum operation depth of 12"


async def test_inline_fragments_nested_deep_are_refused_before_validation(
    catalog: CatalogClient,
) -> None:
    """Measured without recursion, and refused: 150 nested inline fragments cost graphql-
    core's validation and execution some 20 ms a request, and its parser 4 ms, so past 64
    levels of brackets a document is refused before parsing. A few at every level pass."""

    def nested(levels: int) -> str:
        return "... on Query { " * levels + "rooms(first: 1) { edges { cursor } }" + " }" * levels

    assert (await catalog.data(f"{{ {nested(20)} }}")) == {"rooms": {"edges": []}}
    message = await refused_in_time(catalog, f"{{ {nested(40)} }}")
    assert message == (
        "'anonymous' nests selections 42 levels deep, counting inline fragments as levels."
        " Allowed: 24"
    )
    message = await refused_in_time(catalog, f"{{ {nested(150)} }}")
    assert message == "Syntax Error: brackets nested more than 64 levels deep."
    # Brackets inside strings and comments are text, not nesting.
    text = "{[" * 100
    document = f'# {text}\n{{ rooms(first: 1, after: "{text}") {{ edges {{ cursor }} }} }}'
    assert "brackets" not in await refused_in_time(catalog, document)


async def test_an_unknown_fragment_is_refused_clearly(catalog: CatalogClient) -> None:
    message = await refused_in_time(catalog, f"{{ {rooms_with('...Nowhere')} }}")
    assert message == "Unknown fragment 'Nowhere'."


async def test_fragments_that_spread_each_other_are_refused_as_a_cycle(
    catalog: CatalogClient,
) -> None:
    document = (
        f"{{ {rooms_with('...A')} }} fragment A on Room {{ kind ...B }} "
        "fragment B on Room { ...A }"
    )
    message = await refused_in_time(catalog, document)
    assert message == "Cannot spread fragment 'A' within itself via 'B'."


async def test_room_lists_and_graphiql_introspection_pass_the_limits(
    catalog: CatalogClient,
) -> None:
    await catalog.send_all(
        [push("2121_live", BASE), recording("2121_past", "f1", BASE - 600, BASE - 60)]
    )
    rooms = await catalog.all_rooms(page=1, fields=SNAPSHOT_ROOM)
    assert [room["kind"] for room in rooms] == ["LIVE", "REPLAY"]
    # What GraphiQL (graphql-js getIntrospectionQuery) asks for when it opens.
    introspection = get_introspection_query(
        descriptions=True, input_value_deprecation=True, schema_description=True, one_of=True
    )
    data = await catalog.data(introspection)
    assert data["__schema"]["queryType"]["name"] == "Query"


def nested_json(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param(nested_json(100_000).encode(), "nested deeper than", id="nested-body"),
        pytest.param(
            ('{"query": "{ __typename }", "variables": {"v": ' + nested_json(100) + "}}").encode(),
            "nested deeper than",
            id="nested-variables",
        ),
        pytest.param(b'{"query": "{ __typename }"', "Unable to parse", id="cut-short"),
        pytest.param(b'{"query": "\xff"}', "Unable to parse", id="not-utf-8"),
    ],
)
async def test_a_graphql_body_that_is_not_bounded_json_is_refused_with_400(
    catalog: CatalogClient, body: bytes, says: str
) -> None:
    for headers in ({}, {"Authorization": f"Bearer {ADMIN_TOKEN}"}):  # cached path or not
        response = await catalog.http.post(
            "/graphql", content=body, headers={"content-type": "application/json", **headers}
        )
        assert response.status_code == 400, response.text
        assert says in response.text


async def test_nested_variables_in_a_get_are_refused_with_400(catalog: CatalogClient) -> None:
    response = await catalog.http.get(
        "/graphql", params={"query": "{ __typename }", "variables": nested_json(2000)}
    )
    assert response.status_code == 400
    assert "nested deeper than" in response.text


async def test_a_deeply_nested_callback_sent_as_a_mutation_is_refused_with_400(
    catalog: CatalogClient,
) -> None:
    payload = {**sign(push("2121_a", BASE)), "extra": json.loads(nested_json(500))}
    response = await catalog.http.post(
        "/graphql",
        json={
            "query": "mutation($p: JSON!) { ingestTencentEvent(payload: $p) { accepted } }",
            "variables": {"p": payload},
        },
    )
    assert response.status_code == 400
    assert "nested deeper than" in response.text
    assert (await catalog.database.scalars(select(func.count(InboxEntry.id)))) == [0]


# Hostile arguments: each is answered (found, not found, or refused with the reason),
# never with an internal error.


async def escaped_graphql(
    catalog: CatalogClient, query: str, variables: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    """A GraphQL request whose JSON escapes non-ASCII text, so that a lone surrogate
    (which JSON allows as `\\ud800`) reaches the service as clients can send it."""
    headers = {"content-type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps({"query": query, "variables": variables})
    response = await catalog.http.post("/graphql", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def messages_of(body: dict[str, Any]) -> list[str]:
    assert body.get("errors"), f"expected a GraphQL error, got {body}"
    return [error["message"] for error in body["errors"]]


# Primary keys are 32-bit on PostgreSQL: a larger one in a global id names nothing.
BEYOND_ANY_PRIMARY_KEY = [("Broadcast", 2**31), ("Anchor", 99_999_999_999),
    ("Stream", 2**40), ("RecordingFile", 10**17), ("InboxEntry", 2**31)]  # fmt: skip


async def test_global_ids_beyond_any_primary_key_name_nothing(catalog: CatalogClient) -> None:
    await catalog.send(recording("2121_a", "f1", BASE, BASE + 60))
    for type_name, pk in BEYOND_ANY_PRIMARY_KEY:
        node_id = str(relay.GlobalID(type_name, str(pk)))
        body = await catalog.graphql(
            "query($id: ID!) { node(id: $id) { id } broadcast(id: $id) { id } }",
            {"id": node_id},
            token=ADMIN_TOKEN,
        )
        assert body == {"data": {"node": None, "broadcast": None}}, type_name

    too_big = str(relay.GlobalID("Broadcast", str(2**31)))
    for mutation in ("curateBroadcast(id: $id, hidden: true)", "deleteBroadcast(id: $id)"):
        body = await catalog.graphql(
            f"mutation($id: ID!) {{ {mutation} {{ id }} }}", {"id": too_big}, token=ADMIN_TOKEN
        )
        assert messages_of(body) == ["id does not name a broadcast"], mutation


async def test_lookups_by_keys_no_row_can_have_find_nothing(catalog: CatalogClient) -> None:
    await catalog.send(recording("2121_a", "f1", BASE, BASE + 60))
    lookups = (
        "query($key: String!) { stream(streamId: $key) { streamId }"
        " anchor(userId: $key) { userId } recordingFile(fileId: $key) { fileId } }"
    )
    for key in ("2121_a\ud800", "f1\udfff", "x" * 1_000_000):
        body = await escaped_graphql(catalog, lookups, {"key": key})
        assert body == {"data": {"stream": None, "anchor": None, "recordingFile": None}}


async def test_an_unknown_operation_name_with_a_lone_surrogate_is_refused_clearly(
    catalog: CatalogClient,
) -> None:
    """Strawberry quotes the name in its plain-text 400, which could not be encoded."""
    body = json.dumps({"query": "query Known { __typename }", "operationName": "a\ud800"})
    response = await catalog.http.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.text == 'Unknown operation named "a\\ud800".'


UNSTORABLE_TEXT = {
    "nul": ("2121_a\u0000", "text must not contain NUL characters"),
    "lone-surrogate": ("2121_a\ud800", "text must be valid Unicode (it has a lone surrogate)"),
}
TEXT_FILTERS = {
    "rooms-of-an-anchor": "query($text: String) { rooms(anchor: $text) { edges { cursor } } }",
    "files-of-a-stream": (
        "query($text: String) { recordingFiles(streamId: $text) { edges { cursor } } }"
    ),
    "inbox-of-a-stream": (
        "query($text: String) { inboxEntries(streamId: $text) { edges { cursor } } }"
    ),
}


@pytest.mark.parametrize("query", TEXT_FILTERS.values(), ids=TEXT_FILTERS.keys())
@pytest.mark.parametrize(("text", "message"), UNSTORABLE_TEXT.values(), ids=UNSTORABLE_TEXT.keys())
async def test_a_filter_with_text_no_row_can_hold_is_refused_clearly(
    catalog: CatalogClient, query: str, text: str, message: str
) -> None:
    await catalog.send(recording("2121_a", "f1", BASE, BASE + 60))
    body = await escaped_graphql(catalog, query, {"text": text}, token=ADMIN_TOKEN)
    assert messages_of(body) == [message]


async def test_mutations_refuse_text_with_lone_surrogates_clearly(catalog: CatalogClient) -> None:
    await catalog.send(recording("2121_a", "f1", BASE, BASE + 60))
    rooms = await catalog.data("{ rooms { edges { node { broadcast { id } } } } }")
    broadcast_id = rooms["rooms"]["edges"][0]["node"]["broadcast"]["id"]
    upsert = "mutation($input: AnchorInput!) { upsertAnchor(input: $input) { userId } }"
    surrogate = "\ud83d"  # the first half of an emoji, alone
    for field in ("userId", "nickname", "avatarUrl", "streamIds"):
        text = f"https://cdn.example.com/{surrogate}.png" if field == "avatarUrl" else surrogate
        anchor = {"userId": "alice", field: [text] if field == "streamIds" else text}
        body = await escaped_graphql(catalog, upsert, {"input": anchor}, token=ADMIN_TOKEN)
        assert messages_of(body) == ["text must be valid Unicode (it has a lone surrogate)"], field
    body = await escaped_graphql(
        catalog,
        "mutation($id: ID!, $title: String) { curateBroadcast(id: $id, title: $title) { id } }",
        {"id": broadcast_id, "title": f"Live {surrogate}"},
        token=ADMIN_TOKEN,
    )
    assert messages_of(body) == ["text must be valid Unicode (it has a lone surrogate)"]


TIMES_BEYOND_UTC = {
    "after-year-9999": ("startedAfter", "9999-12-31T23:59:59-23:59"),
    "before-year-1": ("startedBefore", "0001-01-01T00:00:00+23:59"),
}


@pytest.mark.parametrize(("argument", "moment"), TIMES_BEYOND_UTC.values(), ids=TIMES_BEYOND_UTC)
async def test_a_time_beyond_the_years_utc_can_hold_is_refused_clearly(
    catalog: CatalogClient, argument: str, moment: str
) -> None:
    message = f"{argument} is out of range: {moment} is not between the years 1 and 9999 in UTC"
    inline = await catalog.graphql(
        f'{{ recordingFiles({argument}: "{moment}") {{ edges {{ cursor }} }} }}'
    )
    assert messages_of(inline) == [message]
    as_variable = await catalog.graphql(
        f"query($t: DateTime) {{ recordingFiles({argument}: $t) {{ edges {{ cursor }} }} }}",
        {"t": moment},
    )
    assert messages_of(as_variable) == [message]


def _selections(draw: st.DrawFn, fragments: int, nesting: int) -> str:
    """A selection set's contents: fields (some aliased, some introspection), nested
    fields, inline fragments and spreads of the first `fragments` fragments."""
    kinds = ["leaf", "alias", "__leaf"] + (["nested", "__nested", "inline"] if nesting else [])
    kinds += ["spread"] if fragments else []
    items = []
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=4)):
        if kind == "spread":
            items.append(f"...F{draw(st.integers(0, fragments - 1))}")
        elif kind in ("nested", "__nested"):
            name = "__n" if kind == "__nested" else "n"
            items.append(f"{name} {{ {_selections(draw, fragments, nesting - 1)} }}")
        elif kind == "inline":
            items.append(f"... {{ {_selections(draw, fragments, nesting - 1)} }}")
        else:
            items.append({"leaf": "f", "alias": "a: f", "__leaf": "__typename"}[kind])
    return " ".join(items)


@st.composite
def fragment_documents(draw: st.DrawFn) -> str:
    """An operation and up to six fragments, each spreading only those before it."""
    count = draw(st.integers(0, 6))
    fragments = [f"fragment F{i} on T {{ {_selections(draw, i, 2)} }}" for i in range(count)]
    return f"{{ {_selections(draw, count, 2)} }} " + " ".join(fragments)


def _expanded(selection_set: Any, fragments: dict[str, Any]) -> tuple[int, int, int]:
    """(depth, aliases, fields) the slow way: every spread expanded where it stands."""
    depth = aliases = fields = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            fields += 1
            aliases += selection.alias is not None
            if selection.selection_set:
                inner = _expanded(selection.selection_set, fragments)
                if not selection.name.value.startswith("__"):
                    depth = max(depth, 1 + inner[0])
                aliases, fields = aliases + inner[1], fields + inner[2]
            continue
        if isinstance(selection, FragmentSpreadNode):
            inner = _expanded(fragments[selection.name.value].selection_set, fragments)
        else:
            inner = _expanded(selection.selection_set, fragments)
        depth, aliases, fields = max(depth, inner[0]), aliases + inner[1], fields + inner[2]
    return depth, aliases, fields


@settings(max_examples=300, deadline=None)
@given(fragment_documents())
def test_document_limits_count_what_the_document_expands_to(source: str) -> None:
    document = parse(source)
    definitions = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    (operation,) = measure_operations(document, measure_fragments(definitions))
    size = operation.size
    assert (size.depth, size.aliases, size.fields) == _expanded(
        operation.node.selection_set, definitions
    )
