"""The response cache: fast repeats of public queries, never a stale or a hidden answer."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from replay_catalog.response_cache import VersionReads
from storage.catalog_version import Version
from tests.catalog_client import (
    ADMIN_TOKEN,
    BASE,
    CatalogClient,
    cut,
    make_settings,
    push,
    recording,
    screenshot,
)

pytestmark = pytest.mark.anyio

ROOMS = "{ rooms(first: 20) { edges { node { kind stream { streamId } broadcast { id } } } } }"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def streams_of(body: dict[str, Any]) -> list[str]:
    return [edge["node"]["stream"]["streamId"] for edge in body["data"]["rooms"]["edges"]]


async def rooms_and_reads(catalog: CatalogClient, **headers: str) -> tuple[list[str], list[str]]:
    """The room list's streams, and the SELECTs that answering it ran."""
    with catalog.counting_statements(selects_only=True) as statements:
        answer = await catalog.http.post("/graphql", json={"query": ROOMS}, headers=headers)
    assert answer.status_code == 200, answer.text
    return streams_of(answer.json()), statements


async def test_a_repeated_room_list_is_answered_from_the_cache_until_a_callback_lands(
    catalog: CatalogClient,
) -> None:
    await catalog.send_all([recording("2121_a", "a1", BASE, BASE + 60), cut("2121_a", BASE + 60)])
    first, computed = await rooms_and_reads(catalog)
    again, cached = await rooms_and_reads(catalog)
    assert first == again == ["2121_a"]
    assert len(computed) > 1
    # At most the catalog version (on SQLite it is read outside the engine), nothing else.
    assert len(cached) <= 1 and all("catalog_version" in read for read in cached)

    # Acknowledged, so the very next read must show it.
    assert (await catalog.send(push("2121_b", BASE + 100))).status_code == 200
    assert (await rooms_and_reads(catalog))[0] == ["2121_b", "2121_a"]


async def test_a_write_through_another_process_is_seen_at_once(
    catalog: CatalogClient, database_url: str
) -> None:
    await catalog.send(recording("2121_a", "a1", BASE, BASE + 60))
    assert (await rooms_and_reads(catalog))[0] == ["2121_a"]
    # Another replica (or `replay-catalog reprocess`) on the same database.
    async with CatalogClient.started(make_settings(database_url)) as other:
        assert (await other.send(push("2121_b", BASE + 100))).status_code == 200
    assert (await rooms_and_reads(catalog))[0] == ["2121_b", "2121_a"]


async def test_concurrent_misses_for_one_room_list_compute_it_once(
    catalog: CatalogClient,
) -> None:
    await catalog.send_all([recording("2121_a", "a1", BASE, BASE + 60), cut("2121_a", BASE + 60)])
    for round_ in range(2):  # the second round after a callback: a new version, all miss
        with catalog.counting_statements(selects_only=True) as statements:
            answers = await asyncio.gather(
                *(catalog.http.post("/graphql", json={"query": ROOMS}) for _ in range(8))
            )
        assert len({answer.content for answer in answers}) == 1
        assert all(answer.status_code == 200 for answer in answers)
        room_lists = [read for read in statements if "FROM broadcast" in read]
        assert len(room_lists) == 1, (
            f"round {round_}: the list was computed {len(room_lists)} times"
        )
        await catalog.send(push("2121_b", BASE + 100 + round_))
    metrics = (await catalog.http.get("/metrics")).text
    assert 'replay_catalog_graphql_cache_total{result="shared"}' in metrics

    # An answer with errors is not shared: each request gets its own, none waits forever.
    bad_page = {"query": "{ rooms(first: 1000) { edges { cursor } } }"}
    answers = await asyncio.gather(
        *(catalog.http.post("/graphql", json=bad_page) for _ in range(5))
    )
    assert all("errors" in answer.json() for answer in answers)


async def test_hidden_replays_never_leak_through_the_cache(catalog: CatalogClient) -> None:
    await catalog.send_all(
        [
            recording("2121_a", "a1", BASE, BASE + 60),
            recording("2121_b", "b1", BASE + 100, BASE + 160),
        ]
    )
    answer = await catalog.http.post("/graphql", json={"query": ROOMS})
    hidden_id = answer.json()["data"]["rooms"]["edges"][0]["node"]["broadcast"]["id"]
    hide = """mutation($id: ID!) { curateBroadcast(id: $id, hidden: true) { hidden } }"""
    hidden = await catalog.http.post(
        "/graphql", json={"query": hide, "variables": {"id": hidden_id}}, headers=ADMIN
    )
    assert hidden.json() == {"data": {"curateBroadcast": {"hidden": True}}}

    # The admin sees it; that answer is never given to the public, nor the other way round.
    assert (await rooms_and_reads(catalog, **ADMIN))[0] == ["2121_b", "2121_a"]
    assert (await rooms_and_reads(catalog))[0] == ["2121_a"]
    assert (await rooms_and_reads(catalog))[0] == ["2121_a"]
    assert (await rooms_and_reads(catalog, **ADMIN))[0] == ["2121_b", "2121_a"]


async def test_get_answers_revalidate_with_their_etag(catalog: CatalogClient) -> None:
    await catalog.send(recording("2121_a", "a1", BASE, BASE + 60))
    first = await catalog.http.get("/graphql", params={"query": ROOMS})
    assert first.status_code == 200 and streams_of(first.json()) == ["2121_a"]
    assert first.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]

    unchanged = await catalog.http.get(
        "/graphql", params={"query": ROOMS}, headers={"If-None-Match": etag}
    )
    assert unchanged.status_code == 304 and unchanged.content == b""

    await catalog.send(push("2121_b", BASE + 100))
    changed = await catalog.http.get(
        "/graphql", params={"query": ROOMS}, headers={"If-None-Match": etag}
    )
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert streams_of(changed.json()) == ["2121_b", "2121_a"]


async def test_cache_control_max_age_is_configurable(database_url: str) -> None:
    settings = make_settings(database_url, graphql_cache_max_age_seconds=30)
    async with CatalogClient.started(settings) as catalog:
        answer = await catalog.http.get("/graphql", params={"query": ROOMS})
    assert answer.headers["cache-control"] == "public, max-age=30"


async def test_mutations_and_failed_queries_are_never_cached(catalog: CatalogClient) -> None:
    upsert = 'mutation { upsertAnchor(input: {userId: "amy", nickname: "Amy"}) { nickname } }'
    for _ in range(2):
        with catalog.counting_statements() as statements:
            answer = await catalog.http.post("/graphql", json={"query": upsert}, headers=ADMIN)
        assert answer.json() == {"data": {"upsertAnchor": {"nickname": "Amy"}}}
        assert any("anchor" in statement for statement in statements)

    bad_page = "{ rooms(first: 1000) { edges { cursor } } }"
    for _ in range(2):
        answer = await catalog.http.post("/graphql", json={"query": bad_page})
        assert "errors" in answer.json()


async def test_without_the_cache_every_read_is_computed(database_url: str) -> None:
    settings = make_settings(database_url, response_cache_entries=0)
    async with CatalogClient.started(settings) as catalog:
        await catalog.send(recording("2121_a", "a1", BASE, BASE + 60))
        for _ in range(2):
            _, reads = await rooms_and_reads(catalog)
            assert len(reads) > 1 and not any("catalog_version" in read for read in reads)


async def test_a_version_read_serves_only_requests_that_came_before_it_started() -> None:
    version = 0
    release = asyncio.Event()

    async def read(_seen: Version | None) -> tuple[Version, frozenset[str] | None]:
        nonlocal version
        version += 1
        seen = version
        await release.wait()
        return ("epoch", seen), None

    reads = VersionReads(read)
    first = asyncio.ensure_future(reads.current())
    await asyncio.sleep(0)  # the first read is under way
    later = [asyncio.ensure_future(reads.current()) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    assert await first == ("epoch", 1)
    # Those who came while read 1 ran share read 2, which started after they came.
    assert [await request for request in later] == [("epoch", 2)] * 5
    assert version == 2


async def test_emptied_tables_never_bring_back_answers_cached_before(
    catalog: CatalogClient,
) -> None:
    """Emptying the tables (as the tests do, or a restore) starts the version again from 1;
    when it reaches the number an answer was cached under, that answer must not return."""
    await catalog.send(push("2121_before", BASE))
    assert (await rooms_and_reads(catalog))[0] == ["2121_before"]
    async with catalog.database.engine.begin() as connection:
        writes = (await connection.execute(text("SELECT version FROM catalog_version"))).scalar()
        for table in ("push_event", "broadcast", "inbox_entry", "stream", "anchor"):
            await connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - ours
        await connection.execute(text("DELETE FROM catalog_version"))
    for index in range(writes):  # one version per callback: back to the same number
        await catalog.send(push(f"2121_after{index}", BASE + 100 + index))
    async with catalog.database.engine.connect() as connection:
        again = (await connection.execute(text("SELECT version FROM catalog_version"))).scalar()
    assert again == writes
    listed, _ = await rooms_and_reads(catalog)
    assert "2121_before" not in listed and len(listed) == writes


async def test_a_retried_or_unused_callback_leaves_cached_answers_in_place(
    catalog: CatalogClient,
) -> None:
    event = recording("2121_a", "a1", BASE, BASE + 60)
    await catalog.send(event)
    assert (await rooms_and_reads(catalog))[0] == ["2121_a"]
    # Tencent retries; an event type the catalog does not use is kept in the inbox only.
    await catalog.send(event)
    await catalog.send({"event_type": 332, "stream_id": "2121_a", "channel_id": "2121_a"})
    rooms, reads = await rooms_and_reads(catalog)
    assert rooms == ["2121_a"]
    assert len(reads) <= 1 and all("catalog_version" in read for read in reads)


PROFILE = """query($userId: String!) { anchor(userId: $userId) { userId replayCount
  replays(first: 5) { edges { node { id durationSeconds recordings { fileId } } } } } }"""
PAGE = """query($after: String) { rooms(first: 1, after: $after) {
  edges { node { kind coverUrl stream { streamId } } } pageInfo { endCursor } } }"""


async def answer_and_reads(
    catalog: CatalogClient, query: str, variables: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """An anonymous answer, and the reads of the catalog (not of its version) it cost."""
    with catalog.counting_statements(selects_only=True) as statements:
        answer = await catalog.http.post("/graphql", json={"query": query, "variables": variables})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "errors" not in body, body
    reads = [s for s in statements if "catalog_version" not in s and "catalog_change" not in s]
    return body["data"], reads


def files_of_profile(data: dict[str, Any]) -> list[str]:
    replays = data["anchor"]["replays"]["edges"]
    return sorted(r["fileId"] for edge in replays for r in edge["node"]["recordings"])


async def test_a_callback_about_one_stream_leaves_cached_answers_about_others_in_place(
    catalog: CatalogClient,
) -> None:
    for stream in ("2121_amy", "2121_bob"):
        first_file = recording(stream, f"{stream}-1", BASE, BASE + 60)
        await catalog.send_all([push(stream, BASE, "s"), first_file, cut(stream, BASE + 60, "s")])
    amy, computed = await answer_and_reads(catalog, PROFILE, {"userId": "amy"})
    assert computed and files_of_profile(amy) == ["2121_amy-1"]
    await answer_and_reads(catalog, PROFILE, {"userId": "bob"})

    await catalog.send(recording("2121_bob", "2121_bob-2", BASE + 60, BASE + 120))
    assert await answer_and_reads(catalog, PROFILE, {"userId": "amy"}) == (amy, [])
    bob, computed = await answer_and_reads(catalog, PROFILE, {"userId": "bob"})
    assert computed and files_of_profile(bob) == ["2121_bob-1", "2121_bob-2"]

    # Bob's profile names his streams: renaming him makes his answers stale, not Amy's.
    mutation = 'mutation { upsertAnchor(input: {userId: "bob", nickname: "Bob"}) { id } }'
    assert (await catalog.http.post("/graphql", json={"query": mutation}, headers=ADMIN)).is_success
    assert await answer_and_reads(catalog, PROFILE, {"userId": "amy"}) == (amy, [])
    assert (await answer_and_reads(catalog, PROFILE, {"userId": "bob"}))[1]


async def test_a_new_cover_on_a_live_room_leaves_room_list_pages_without_it_cached(
    catalog: CatalogClient,
) -> None:
    past_file = recording("2121_past", "p1", BASE, BASE + 60)
    await catalog.send_all(
        [push("2121_past", BASE, "p"), past_file, cut("2121_past", BASE + 60, "p")]
    )
    await catalog.send(push("2121_live", BASE + 100, "l"))
    first, _ = await answer_and_reads(catalog, PAGE, {"after": None})
    assert first["rooms"]["edges"][0]["node"]["stream"]["streamId"] == "2121_live"
    after = {"after": first["rooms"]["pageInfo"]["endCursor"]}
    second, _ = await answer_and_reads(catalog, PAGE, after)
    assert second["rooms"]["edges"][0]["node"]["stream"]["streamId"] == "2121_past"

    await catalog.send(screenshot("2121_live", BASE + 110))
    assert await answer_and_reads(catalog, PAGE, after) == (second, [])
    fresh, computed = await answer_and_reads(catalog, PAGE, {"after": None})
    assert computed and fresh != first
    assert fresh["rooms"]["edges"][0]["node"]["coverUrl"] is not None

    # A room that moves (the live one ends and becomes a replay) reorders every page.
    await catalog.send(cut("2121_live", BASE + 120, "l"))
    assert (await answer_and_reads(catalog, PAGE, after))[1]


async def test_an_answer_computed_while_an_unrelated_write_landed_is_kept(
    catalog: CatalogClient,
) -> None:
    """Computed under one version and finished under the next: still valid if the write
    between touched nothing it showed, so it is kept."""
    for stream in ("2121_amy", "2121_bob"):
        await catalog.send(recording(stream, f"{stream}-1", BASE, BASE + 60))
    slow_amy = asyncio.ensure_future(answer_and_reads(catalog, PROFILE, {"userId": "amy"}))
    await catalog.send(recording("2121_bob", "2121_bob-2", BASE + 60, BASE + 120))
    amy, _ = await slow_amy
    await catalog.send(recording("2121_bob", "2121_bob-3", BASE + 120, BASE + 180))
    assert await answer_and_reads(catalog, PROFILE, {"userId": "amy"}) == (amy, [])
