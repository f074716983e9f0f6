"""Attacks on the public GraphQL API and the public callback URL, each through HTTP."""

import logging

import pytest
from sqlalchemy import func, select

from storage import InboxEntry, RecordingFile
from tests.catalog_client import (
    ADMIN_TOKEN,
    BASE,
    CatalogClient,
    make_settings,
    push,
    recording,
    sign,
)

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
