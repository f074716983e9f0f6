"""POST /callbacks/tencent: authentication, status codes, idempotency and outages."""

import asyncio
import hashlib
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import col

from storage import Anchor, InboxEntry, RecordingFile
from storage.database import Database
from tests.catalog_client import (
    ADMIN_TOKEN,
    BASE,
    CALLBACK_KEY,
    UNREACHABLE_DATABASES,
    CatalogClient,
    clients_of,
    cut,
    make_settings,
    push,
    recording,
    screenshot,
    sign,
)

pytestmark = pytest.mark.anyio

FILE_QUERY = "query($id: String!) { recordingFile(fileId: $id) { fileId format } }"


async def count(catalog: CatalogClient, model: Any) -> int:
    rows = await catalog.database.scalars(select(func.count()).select_from(model))
    return int(rows[0])


async def test_signed_callback_is_accepted_and_stored(catalog: CatalogClient) -> None:
    response = await catalog.post_callback(sign(recording("2121_alice", "f1", BASE, BASE + 60)))
    assert response.status_code == 200
    assert response.json() == {"code": 0}
    data = await catalog.data(FILE_QUERY, {"id": "f1"})
    assert data["recordingFile"] == {"fileId": "f1", "format": "HLS"}


def signed_with(payload: dict[str, Any], t: Any, key: str = CALLBACK_KEY) -> dict[str, Any]:
    return {**payload, "t": t, "sign": hashlib.md5(f"{key}{t}".encode()).hexdigest()}


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (lambda p: {**sign(p), "sign": "0" * 32}, "wrong sign"),
        (lambda p: sign(p, key="not-the-key"), "wrong sign"),
        (lambda p: signed_with(p, int(time.time()) - 1), "expired"),
        (lambda p: {k: v for k, v in sign(p).items() if k != "sign"}, "missing sign"),
        (lambda p: {k: v for k, v in sign(p).items() if k != "t"}, "invalid t"),
        (lambda p: {**sign(p), "t": "soon"}, "invalid t"),
        # A valid sign for another t does not make an expired t valid.
        (
            lambda p: {**signed_with(p, int(time.time()) + 600), "t": int(time.time()) - 5},
            "wrong sign",
        ),
    ],
    ids=["zero-sign", "other-key", "expired", "no-sign", "no-t", "garbage-t", "swapped-t"],
)
async def test_forged_or_expired_callback_is_refused_and_not_stored(
    catalog: CatalogClient, forge: Any, reason: str
) -> None:
    response = await catalog.post_callback(forge(recording("2121_alice", "f1", BASE, BASE + 60)))
    assert response.status_code == 401
    body = response.json()
    assert body["code"] != 0 and reason in body["message"]
    assert (await catalog.data(FILE_QUERY, {"id": "f1"}))["recordingFile"] is None
    assert await count(catalog, InboxEntry) == 0


async def test_t_sent_as_a_string_is_accepted(catalog: CatalogClient) -> None:
    t = str(int(time.time()) + 600)
    await catalog.post_callback(signed_with(recording("2121_a", "f1", BASE, BASE + 9), t))
    assert (await catalog.data(FILE_QUERY, {"id": "f1"}))["recordingFile"] is not None


async def test_without_a_callback_key_every_callback_is_refused(database_url: str) -> None:
    async with CatalogClient.started(make_settings(database_url, callback_key=None)) as catalog:
        response = await catalog.post_callback(sign(push("2121_a", BASE)))
        assert response.status_code == 401
        assert "CALLBACK_KEY is not configured" in response.json()["message"]


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'"text"', b"", b"\xff\xfe", b"null"],
    ids=["text", "array", "string", "empty", "binary", "null"],
)
async def test_body_that_is_not_a_json_object_gets_400(catalog: CatalogClient, body: bytes) -> None:
    response = await catalog.http.post(
        "/callbacks/tencent", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] != 0
    assert await count(catalog, InboxEntry) == 0


async def test_oversized_body_gets_413_even_without_content_length(
    catalog: CatalogClient,
) -> None:
    payload = sign({**push("2121_a", BASE), "padding": "x" * (70 * 1024)})
    response = await catalog.post_callback(payload)
    assert response.status_code == 413

    async def chunks() -> Any:
        for _ in range(100):
            yield b" " * 1024  # streamed: no Content-Length to trust

    response = await catalog.http.post("/callbacks/tencent", content=chunks())
    assert response.status_code == 413
    assert await count(catalog, InboxEntry) == 0


async def test_retried_callback_is_stored_once(catalog: CatalogClient) -> None:
    event = recording("2121_alice", "f1", BASE, BASE + 60)
    for _ in range(3):  # each retry carries a new t and sign
        await catalog.send(event)
    assert await count(catalog, RecordingFile) == 1
    assert await count(catalog, InboxEntry) == 1


async def test_concurrent_deliveries_of_one_event_are_stored_once(catalog: CatalogClient) -> None:
    event = sign(recording("2121_alice", "f1", BASE, BASE + 60))
    responses = await asyncio.gather(*(catalog.post_callback(event) for _ in range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert await count(catalog, RecordingFile) == 1
    assert await count(catalog, InboxEntry) == 1


async def test_unused_event_types_are_kept_in_the_inbox_and_ignored(
    catalog: CatalogClient,
) -> None:
    await catalog.send({"event_type": 332, "stream_id": "2121_a", "record_status": "x"})
    rows = await catalog.database.scalars(select(InboxEntry))
    assert [(r.event_type, r.outcome) for r in rows] == [(332, "ignored")]
    assert (await catalog.data('{ stream(streamId: "2121_a") { streamId } }'))["stream"] is None


async def test_inbox_keeps_the_payload_exactly_as_received(catalog: CatalogClient) -> None:
    event = {**recording(" 2121_a ", "f1", BASE, BASE + 60), "new_field": {"nested": [1, "x"]}}
    signed = sign(event)
    await catalog.post_callback(signed)
    (entry,) = await catalog.database.scalars(select(InboxEntry))
    assert entry.payload == signed
    assert entry.outcome == "applied"


async def test_malformed_authentic_event_is_quarantined_not_dropped(
    catalog: CatalogClient,
) -> None:
    broken = {"event_type": 100, "stream_id": "2121_a", "file_id": "f1"}  # no URL, no times
    response = await catalog.post_callback(sign(broken))
    assert response.status_code == 200  # stored: Tencent must not retry it forever
    (entry,) = await catalog.database.scalars(select(InboxEntry))
    assert entry.outcome == "quarantined"
    assert entry.reason == "video_url is missing"
    assert await count(catalog, RecordingFile) == 0


@pytest.mark.parametrize(
    "unreachable", UNREACHABLE_DATABASES.values(), ids=UNREACHABLE_DATABASES.keys()
)
async def test_callback_gets_503_when_the_database_cannot_be_written(unreachable: str) -> None:
    async with CatalogClient.started(make_settings(unreachable)) as catalog:
        response = await catalog.post_callback(sign(push("2121_a", BASE)))
        assert response.status_code == 503
        assert response.json()["code"] != 0
        assert (await catalog.http.get("/readyz")).status_code == 503
        assert (await catalog.http.get("/healthz")).status_code == 200
        body = await catalog.graphql('{ stream(streamId: "2121_a") { streamId } }')
        assert (
            body["errors"][0]["message"] == "the catalog database is unavailable; try again later"
        )


async def test_readyz_is_ok_when_the_database_answers(catalog: CatalogClient) -> None:
    response = await catalog.http.get("/readyz")
    assert response.status_code == 200


async def test_secrets_never_reach_logs_or_responses(
    catalog: CatalogClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="replay_catalog")
    caplog.set_level(logging.INFO)
    secret_param = "txSecret=5f1b2c3d4e&txTime=65F0A1B2"
    event = push("2121_a", BASE, "s1", stream_param=f"bizid=2121&{secret_param}")
    signed = sign(event)
    ok = await catalog.post_callback(signed)
    forged = await catalog.post_callback({**signed, "sign": "f" * 32})
    for text in (caplog.text, ok.text, forged.text):
        assert CALLBACK_KEY not in text
        assert "5f1b2c3d4e" not in text
        assert signed["sign"] not in text


async def test_a_quarantine_reason_is_logged_without_the_secrets_it_quotes(
    catalog: CatalogClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="replay_catalog")
    # The reason quotes the unknown format: here it carries a push secret.
    event = recording("2121_a", "f1", BASE, BASE + 60, file_format="mp4")
    response = await catalog.post_callback(sign({**event, "file_format": "x&txSecret=5f1b2c3d"}))
    assert response.status_code == 200
    quarantined = [r for r in caplog.records if "outcome=quarantined" in r.getMessage()]
    assert len(quarantined) == 1 and "unknown file_format" in quarantined[0].getMessage()
    assert "5f1b2c3d" not in caplog.text


async def test_concurrent_events_of_one_new_stream_all_land_in_one_broadcast(
    catalog: CatalogClient,
) -> None:
    parts = [
        recording("2121_alice", f"part{i}", BASE + 600 * i, BASE + 600 * (i + 1), "mp4")
        for i in range(12)
    ]
    events = [push("2121_alice", BASE, "s1"), *parts]
    responses = await asyncio.gather(*(catalog.post_callback(sign(e)) for e in events))
    assert [r.status_code for r in responses] == [200] * len(events)
    (broadcast,) = await catalog.broadcasts("2121_alice")
    assert sorted(r["fileId"] for r in broadcast["recordings"]) == sorted(
        p["file_id"] for p in parts
    )
    assert broadcast["isLive"] is True
    anchors = await catalog.database.scalars(select(func.count()).select_from(Anchor))
    assert anchors == [1]


async def test_a_batch_regroups_each_stream_once_for_all_its_new_facts(
    catalog: CatalogClient,
) -> None:
    """Screenshots of a live room that arrive together are written in one transaction and
    the room regrouped once for them all (not once each), with the latest as its cover."""
    await catalog.send(push("2121_live", BASE, "s1"))
    shots = [screenshot("2121_live", BASE + 10 * (i + 1)) for i in range(16)]
    with catalog.counting_statements(selects_only=True) as selects:
        responses = await asyncio.gather(*(catalog.post_callback(sign(e)) for e in shots))
    assert [r.status_code for r in responses] == [200] * len(shots)
    regroup_reads = [s for s in selects if "AS boundary" in s]
    assert 0 < len(regroup_reads) < len(shots) / 2
    (room,) = await catalog.all_rooms(fields="kind coverUrl")
    assert room["kind"] == "LIVE"
    assert room["coverUrl"].endswith(shots[-1]["pic_url"])


async def test_a_batch_costs_the_statements_of_one_callback_whatever_its_size(
    catalog: CatalogClient,
) -> None:
    """Concurrent callbacks on many streams share transactions, and a transaction's
    statements do not grow with its callbacks: the streams are locked in one, each kind
    of fact inserted in one, their broadcasts and facts read in one each, and each kind
    of write made in one (on PostgreSQL each statement is a round trip)."""
    streams = [f"2121_many{n}" for n in range(12)]
    for n, stream in enumerate(streams):
        await catalog.send(push(stream, BASE, f"s{n}"))
        await catalog.send(recording(stream, f"first{n}", BASE, BASE + 60))
    events = [
        *(recording(s, f"next{n}", BASE + 60, BASE + 120) for n, s in enumerate(streams)),
        *(screenshot(s, BASE + 90) for s in streams),
    ]
    with catalog.counting_statements() as statements:
        responses = await asyncio.gather(*(catalog.post_callback(sign(e)) for e in events))
    assert [r.status_code for r in responses] == [200] * len(events)
    transactions = sum("INSERT INTO inbox_entry" in s for s in statements)
    assert transactions < len(events) / 2
    assert len(statements) <= 20 * transactions, statements
    for n, stream in enumerate(streams):
        (broadcast,) = await catalog.broadcasts(stream)
        assert [r["fileId"] for r in broadcast["recordings"]] == [f"first{n}", f"next{n}"]


@asynccontextmanager
async def writes_held(catalog: CatalogClient) -> AsyncIterator[None]:
    """The app's write transactions wait inside the block: another connection holds the
    lock they need first (SQLite's write lock; on PostgreSQL, the inbox table's)."""
    engine = catalog.database.engine
    if catalog.database.is_sqlite:
        engine = engine.execution_options(begin_immediate=True)
    async with engine.connect() as connection:
        transaction = await connection.begin()
        if not catalog.database.is_sqlite:
            await connection.exec_driver_sql("LOCK TABLE inbox_entry IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            await transaction.rollback()


async def write_under_way(
    catalog: CatalogClient, event: dict[str, Any]
) -> "asyncio.Task[httpx.Response]":
    """The callback posted, once its write transaction is under way (held, inside
    `writes_held`); the task that gets its answer."""
    answer = asyncio.create_task(catalog.post_callback(sign(event)))
    while not catalog.database.writes_in_progress:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    return answer


async def test_while_many_read_what_commits_make_stale_a_busy_spell_commits_once_an_interval(
    another_database_url: str,
) -> None:
    """Each commit makes cached answers stale: while callbacks keep coming, readers are
    many and some want answers a commit made stale, the next transaction waits for
    COMMIT_INTERVAL_SECONDS after the last one started (the callbacks meanwhile share
    it); with few readers, or for a sender that waits for each answer, callbacks are
    written at once."""
    interval = 1.0
    settings = make_settings(another_database_url, commit_interval_seconds=interval)
    async with CatalogClient.started(settings) as catalog:
        shots = (screenshot("2121_paced", BASE + n) for n in itertools.count(10))
        loop = asyncio.get_running_loop()

        async def readers(count: int) -> None:
            """Requests for the room list, at once, right after a callback changed it."""
            await catalog.all_rooms()  # kept by the cache
            await catalog.send(next(shots))  # which drops it
            await asyncio.gather(*(catalog.all_rooms() for _ in range(count)))

        async def spell() -> float:
            """Seconds from the answer to a callback to the answers to two more that
            arrived while it was being written."""
            async with writes_held(catalog):
                first = await write_under_way(catalog, next(shots))
                more = [
                    asyncio.create_task(catalog.post_callback(sign(next(shots)))) for _ in range(2)
                ]
                await asyncio.sleep(0.2)  # both queued behind the first
            assert (await first).status_code == 200
            answered = loop.time()
            assert [(await task).status_code for task in more] == [200, 200]
            return loop.time() - answered

        await catalog.send(push("2121_paced", BASE, "s1"))
        await readers(2)  # a few readers
        assert await spell() < interval / 2
        await readers(50)  # many readers, some of them paying for a write
        assert await spell() > interval / 2
        await readers(50)
        started = loop.time()
        for _ in range(5):  # a sender that waits for each answer
            await catalog.send(next(shots))
        assert loop.time() - started < interval
        (room,) = await catalog.all_rooms(fields="kind coverUrl")
        assert room["coverUrl"].endswith(f"2121_paced-{BASE + 23}.jpg"), room


async def test_a_query_that_arrives_while_a_write_is_under_way_waits_for_it_to_end(
    another_database_url: str,
) -> None:
    """An anonymous query waits for the process's write under way to end, up to
    READS_WAIT_FOR_WRITES_SECONDS: what it would compute meanwhile goes stale as the
    write commits, and the write's callers would share the CPU with it. So it answers
    with what the write made (here, the room's new cover); a write that takes longer
    than the wait delays it no further."""
    settings = make_settings(another_database_url, reads_wait_for_writes_seconds=1.0)
    async with CatalogClient.started(settings) as catalog:
        await catalog.send(push("2121_waits", BASE, "s1"))
        await catalog.send(screenshot("2121_waits", BASE + 10))
        loop = asyncio.get_running_loop()
        async with writes_held(catalog):
            written = await write_under_way(catalog, screenshot("2121_waits", BASE + 20))
            read = asyncio.create_task(catalog.all_rooms(fields="coverUrl"))
            await asyncio.sleep(0.4)
            assert not read.done()
        assert (await written).status_code == 200
        (room,) = await read
        assert room["coverUrl"].endswith(f"2121_waits-{BASE + 20}.jpg"), room

        async with writes_held(catalog):
            written = await write_under_way(catalog, screenshot("2121_waits", BASE + 30))
            started = loop.time()
            (room,) = await catalog.all_rooms(fields="coverUrl")
            waited = loop.time() - started
            assert 0.9 < waited < 3, waited  # the wait's bound, with the write still held
            assert room["coverUrl"].endswith(f"2121_waits-{BASE + 20}.jpg"), room
        assert (await written).status_code == 200


async def test_numbers_too_wide_to_store_are_dropped_not_retried_forever(
    catalog: CatalogClient,
) -> None:
    await catalog.send(push("2121_a", BASE, "s1", errcode=3_000_000_000))
    await catalog.send(
        cut("2121_a", BASE + 60, "s1", errcode=3_000_000_000, push_duration="99999999999999")
    )
    await catalog.send(recording("2121_a", "f1", BASE, BASE + 60, file_size=2**40, width=2**40))
    (broadcast,) = await catalog.broadcasts("2121_a")
    assert broadcast["isLive"] is False and broadcast["recordings"][0]["fileId"] == "f1"
    size = await catalog.data('{ recordingFile(fileId: "f1") { fileSize } }')
    assert size["recordingFile"]["fileSize"] == 2**40


@asynccontextmanager
async def database_refusing(
    catalog: CatalogClient, table: str, column: str, value: str | int
) -> AsyncIterator[None]:
    """The database refuses rows of `table` whose `column` is `value`: a trigger or a
    CHECK stands in for any constraint it may have."""
    literal = f"'{value}'" if isinstance(value, str) else str(value)
    async with catalog.database.engine.begin() as connection:
        if catalog.database.is_sqlite:
            await connection.exec_driver_sql(
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table} WHEN NEW.{column} = {literal} "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        else:
            await connection.exec_driver_sql(
                f"ALTER TABLE {table} ADD CONSTRAINT refuse CHECK ({column} <> {literal})"
            )
    try:
        yield
    finally:
        async with catalog.database.engine.begin() as connection:
            await connection.exec_driver_sql(
                "DROP TRIGGER refuse"
                if catalog.database.is_sqlite
                else f"ALTER TABLE {table} DROP CONSTRAINT refuse"
            )


SECRET_PARAM = "bizid=2121&txSecret=0123456789abcdef&txTime=6B077FA3"


async def test_an_event_the_database_refuses_is_quarantined_not_retried_forever(
    catalog: CatalogClient, caplog: pytest.LogCaptureFixture
) -> None:
    async with database_refusing(catalog, "recording_file", "file_id", "evil"):
        await catalog.send(recording("2121_a", "evil", BASE, BASE + 60, stream_param=SECRET_PARAM))
        assert "could not apply a callback" in caplog.text
        assert "0123456789abcdef" not in caplog.text  # not even in the logged SQL error
        (entry,) = await catalog.database.scalars(select(InboxEntry))
        assert entry.outcome == "quarantined"
        assert entry.reason == "the catalog could not apply it (IntegrityError)"
        assert await count(catalog, RecordingFile) == 0
        await catalog.send(recording("2121_a", "good", BASE, BASE + 60))
        assert await count(catalog, RecordingFile) == 1


async def test_concurrent_callbacks_share_transactions_and_one_refused_fails_alone(
    catalog: CatalogClient,
) -> None:
    """Group commit: callbacks that arrive together are written in fewer transactions
    (and inbox inserts and NOTIFYs) than there are callbacks, each answered after its own
    is stored; one the database
    refuses in a shared transaction is quarantined alone, and nothing of the rest is
    lost or stored twice."""

    def file(n: int) -> dict[str, Any]:
        return recording(f"2121_s{n % 5}", f"file{n}", BASE + n * 60, BASE + n * 60 + 59)

    async def deliver(payloads: list[dict[str, Any]]) -> None:
        answers = await asyncio.gather(*(catalog.post_callback(sign(p)) for p in payloads))
        assert [(a.status_code, a.json()) for a in answers] == [(200, {"code": 0})] * len(payloads)

    files = [file(n) for n in range(30)]
    with catalog.counting_statements() as statements:
        await deliver([*files, *files[:4]])  # four retries, delivered at the same time
    raises = ("INSERT INTO catalog_version", "WITH raised AS (INSERT INTO catalog_version")
    version_raises = [s for s in statements if s.startswith(raises)]
    assert 0 < len(version_raises) < len(files)
    # On PostgreSQL a raise is one statement (the version, the change, the pruning).
    recorded = [s for s in statements if s.startswith("INSERT INTO catalog_change")]
    assert len(recorded) == (len(version_raises) if catalog.database.is_sqlite else 0)
    # A batch's inbox entries in one statement, its announcements in one NOTIFY.
    inbox_inserts = [s for s in statements if s.startswith("INSERT INTO inbox_entry")]
    assert 0 < len(inbox_inserts) < len(files)
    assert len([s for s in statements if "pg_notify" in s]) < len(files)

    more = [file(n) for n in range(30, 40)]
    async with database_refusing(catalog, "recording_file", "file_id", "evil"):
        await deliver(
            [*more[:5], recording("2121_s0", "evil", BASE + 7200, BASE + 7260), *more[5:]]
        )
    outcomes = {(e.payload.get("file_id"), e.outcome) for e in await inbox_rows(catalog)}
    stored = files + more
    assert outcomes == {(f["file_id"], "applied") for f in stored} | {("evil", "quarantined")}
    assert await count(catalog, RecordingFile) == len(stored)
    rooms = await catalog.all_rooms(fields="broadcast { recordings { fileId } }")
    shown = [r["fileId"] for room in rooms for r in room["broadcast"]["recordings"]]
    assert sorted(shown) == sorted(f["file_id"] for f in stored)


async def test_a_failed_write_never_logs_the_callbacks_secrets(
    catalog: CatalogClient, caplog: pytest.LogCaptureFixture
) -> None:
    # The inbox itself refuses the event: the error (and its SQL) reaches the log.
    async with database_refusing(catalog, "inbox_entry", "event_type", 1):
        response = await catalog.post_callback(
            sign(push("2121_a", BASE, stream_param=SECRET_PARAM))
        )
        assert response.status_code == 500  # not stored: Tencent must retry
        error_id = response.json()["message"].removeprefix("internal error (id ").rstrip(")")
        assert f"error id {error_id}" in caplog.text and "IntegrityError" in caplog.text
        assert "0123456789abcdef" not in caplog.text


# ---- values checked at the door ------------------------------------------------------

PROFILE = """query($userId: String!) { anchor(userId: $userId) {
    replayCount replayDurationSeconds
    replays(first: 10) { edges { node { durationSeconds recordings { fileId durationSeconds } } } }
} }"""
ROOM_DURATIONS = "kind broadcast { durationSeconds recordings { fileId durationSeconds fileSize } }"


async def post_json_text(catalog: CatalogClient, text: str) -> Any:
    """POST a body as written (`\\ud800` escapes, `NaN`): what httpx's json= cannot send."""
    return await catalog.http.post(
        "/callbacks/tencent", content=text.encode(), headers={"content-type": "application/json"}
    )


async def inbox_rows(catalog: CatalogClient) -> list[InboxEntry]:
    return list(await catalog.database.scalars(select(InboxEntry).order_by(col(InboxEntry.id))))


async def one_replay_of_alice(catalog: CatalogClient) -> None:
    await catalog.send(push("2121_alice", BASE, "s1"))
    await catalog.send(cut("2121_alice", BASE + 600, "s1"))
    await catalog.send(recording("2121_alice", "f1", BASE, BASE + 600))


ONE_REPLAY = [
    {
        "kind": "REPLAY",
        "broadcast": {
            "durationSeconds": 600,
            "recordings": [{"fileId": "f1", "durationSeconds": 600, "fileSize": 60_000_000.0}],
        },
    }
]


@pytest.mark.parametrize(
    ("extreme", "reason"),
    [
        ({"duration": 2_147_483_647}, "duration is out of range"),
        ({"duration": "1e300"}, "duration is out of range"),
        # 2000-01-02 to 2099-01-01: a span wider than Int.
        ({"start_time": 946_771_200, "end_time": 4_070_908_800}, "start_time is out of range"),
        ({"start_time": BASE - 90_000, "end_time": BASE + 660}, "the file lasts longer than"),
    ],
    ids=["max-int-duration", "huge-float-duration", "century-span", "span-over-a-day"],
)
async def test_a_recording_file_of_absurd_length_is_quarantined_and_rooms_still_answer(
    catalog: CatalogClient, extreme: dict[str, Any], reason: str
) -> None:
    await one_replay_of_alice(catalog)
    response = await catalog.post_callback(
        sign({**recording("2121_alice", "huge", BASE + 600, BASE + 660), **extreme})
    )
    assert response.status_code == 200
    assert await catalog.all_rooms(fields=ROOM_DURATIONS) == ONE_REPLAY
    profile = (await catalog.data(PROFILE, {"userId": "alice"}))["anchor"]
    assert profile["replayDurationSeconds"] == 600
    *_, entry = await inbox_rows(catalog)
    assert entry.outcome == "quarantined" and reason in (entry.reason or "")
    assert (await catalog.data(FILE_QUERY, {"id": "huge"}))["recordingFile"] is None


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (push("2121_a", 1_000_000_000), "event_time is out of range"),  # 2001
        (push("2121_a", int(time.time()) + 3 * 86400), "event_time is out of range"),
        (recording("2121_a", "f9", BASE, int(time.time()) + 3 * 86400), "end_time is out of range"),
        ({**recording("2121_a", "f9", BASE, BASE + 60), "file_id": ["f"]}, "file_id is not a"),
        ({"event_type": 200, "stream_id": "2121_a", "create_time": -5}, "create_time is out of"),
    ],
    ids=["before-2010", "days-ahead", "file-days-ahead", "list-file-id", "negative-time"],
)
async def test_a_signed_event_with_a_time_or_field_out_of_range_is_quarantined(
    catalog: CatalogClient, event: dict[str, Any], reason: str
) -> None:
    response = await catalog.post_callback(sign(event))
    assert response.status_code == 200
    (entry,) = await inbox_rows(catalog)
    assert entry.outcome == "quarantined" and reason in (entry.reason or ""), entry.reason
    assert await catalog.all_rooms() == []


async def test_an_anchors_total_replay_time_saturates_at_the_largest_int(
    catalog: CatalogClient,
) -> None:
    # Five streams of one anchor, each a broadcast from 2010 to now: about 2.6e9 seconds
    # in all, more than GraphQL's Int holds. Every value is in range on its own.
    since_2010 = 1_262_304_000 + 60
    streams = [f"2121_s{i}" for i in range(5)]
    await catalog.data(
        "mutation($input: AnchorInput!) { upsertAnchor(input: $input) { userId } }",
        {"input": {"userId": "marathon", "streamIds": streams}},
        ADMIN_TOKEN,
    )
    for stream in streams:
        await catalog.send(push(stream, since_2010, "long"))
        await catalog.send(recording(stream, f"{stream}-f", BASE, BASE + 600))
        await catalog.send(cut(stream, BASE + 600, "long"))
    profile = (await catalog.data(PROFILE, {"userId": "marathon"}))["anchor"]
    assert profile["replayCount"] == 5
    assert profile["replayDurationSeconds"] == 2**31 - 1
    spans = {edge["node"]["durationSeconds"] for edge in profile["replays"]["edges"]}
    assert spans == {BASE + 600 - since_2010}
    rooms = await catalog.all_rooms(fields=ROOM_DURATIONS)
    assert len(rooms) == 5


@pytest.mark.parametrize(
    "event_type", [2**70, 2**31, -(2**31) - 1, "1" * 30, {"a": 1}, [100], "1e999"]
)
async def test_an_event_type_that_fits_no_column_is_kept_and_quarantined(
    catalog: CatalogClient, event_type: Any
) -> None:
    event = {**recording("2121_a", "f1", BASE, BASE + 60), "event_type": event_type}
    response = await catalog.post_callback(sign(event))
    assert response.status_code == 200, response.text
    (entry,) = await inbox_rows(catalog)
    assert (entry.outcome, entry.event_type, entry.stream_id) == ("quarantined", None, "2121_a")
    assert "event_type" in (entry.reason or "")
    assert entry.payload["event_type"] == event_type
    assert await catalog.all_rooms() == []


async def test_admins_read_a_quarantined_payload_with_an_integer_past_64_bits(
    catalog: CatalogClient,
) -> None:
    """The inbox shows the payload as sent: the answer's encoder (orjson) stops at 64-bit
    integers, and such an answer is encoded by json instead, not refused with a 500."""
    event = {**recording("2121_a", "f1", BASE, BASE + 60), "event_type": 2**70}
    assert (await catalog.post_callback(sign(event))).status_code == 200
    query = "{ inboxEntries(first: 5) { edges { node { outcome payload } } } }"
    response = await catalog.http.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 200, response.text
    (edge,) = response.json()["data"]["inboxEntries"]["edges"]
    assert edge["node"]["outcome"] == "QUARANTINED"
    assert edge["node"]["payload"]["event_type"] == 2**70


SURROGATE_REASON = "the payload contains lone surrogates (text that is not valid Unicode)"


@pytest.mark.parametrize(
    "spoil",
    [
        lambda e: {**e, "stream_id": "2121_a\ud800"},
        lambda e: {**e, "video_url": e["video_url"] + "\udfff"},
        lambda e: {**e, "x\ud800y": 1},
        lambda e: {**e, "callback_ext": {"deep": [{"\udc00": "\ud83d"}]}},
    ],
    ids=["stream-id", "url", "key", "nested"],
)
async def test_a_lone_surrogate_anywhere_in_a_signed_callback_is_kept_and_quarantined(
    catalog: CatalogClient, spoil: Any
) -> None:
    signed = sign(spoil(recording("2121_a", "f1", BASE, BASE + 60)))
    text = json.dumps(signed)  # ASCII, with the lone surrogates as \u escapes
    assert "\\ud" in text
    for _ in range(2):  # a retry is stored once
        response = await post_json_text(catalog, text)
        assert response.status_code == 200, response.text
    (entry,) = await inbox_rows(catalog)
    assert (entry.outcome, entry.reason) == ("quarantined", SURROGATE_REASON)
    stored = json.dumps(entry.payload, ensure_ascii=False)
    stored.encode()  # every string is valid Unicode now
    assert "\ufffd" in stored
    assert entry.stream_id in ("2121_a", "2121_a\ufffd")
    assert await catalog.all_rooms() == []


NON_FINITE_REASON = (
    "the payload contains numbers that are not finite (NaN, Infinity, or over 4,300 digits)"
)


@pytest.mark.parametrize(
    "number",
    ["NaN", "Infinity", "-Infinity", "9" * 5000],
    ids=["nan", "infinity", "minus-infinity", "5000-digits"],
)
async def test_a_number_json_does_not_have_is_kept_and_quarantined(
    catalog: CatalogClient, number: str
) -> None:
    signed = sign(recording("2121_a", "f1", BASE, BASE + 60))
    text = json.dumps(signed)[:-1] + f', "file_size": {number}, "extra": [{number}]}}'
    response = await post_json_text(catalog, text)
    assert response.status_code == 200, response.text
    (entry,) = await inbox_rows(catalog)
    assert entry.outcome == "quarantined"
    assert entry.reason == NON_FINITE_REASON
    assert entry.payload["file_size"] is None and entry.payload["extra"] == [None]
    assert entry.payload["file_id"] == "f1"


@pytest.mark.parametrize("size", [-12345, "-1", 2**60, "9" * 30, 1.5e300])
async def test_a_file_size_out_of_range_is_dropped_and_the_recording_kept(
    catalog: CatalogClient, size: Any
) -> None:
    await catalog.send(recording("2121_a", "f1", BASE, BASE + 60, file_size=size))
    found = await catalog.data('{ recordingFile(fileId: "f1") { fileId fileSize } }')
    assert found["recordingFile"] == {"fileId": "f1", "fileSize": None}


WRONG_SHAPES: list[dict[str, Any]] = [
    {"stream_id": {"nested": "object"}},
    {"stream_id": "2121_" + "a" * 3000},
    {"channel_id": ["2121_a"], "stream_id": None},
    {"event_type": {"a": 1}, "stream_id": [1, 2]},
    {"t": {"soon": True}},
    {"sign": ["x"]},
]


@pytest.mark.parametrize(
    "shape", WRONG_SHAPES, ids=["object", "long", "list", "both", "object-t", "list-sign"]
)
async def test_an_unsigned_body_of_the_wrong_shape_is_refused_in_one_log_line(
    catalog: CatalogClient, caplog: pytest.LogCaptureFixture, shape: dict[str, Any]
) -> None:
    caplog.set_level(logging.INFO)
    body = {**push("2121_a", BASE), "sign": "0" * 32, "t": int(time.time()) + 600, **shape}
    response = await catalog.post_callback(body)
    assert response.status_code == 401
    assert response.json()["code"] != 0
    lines = [r for r in caplog.records if r.name.startswith("replay_catalog")]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].exc_info is None and "\n" not in lines[0].getMessage()
    assert await inbox_rows(catalog) == []


async def test_unsigned_bodies_of_the_wrong_shape_count_toward_the_refusal_limit(
    database_url: str,
) -> None:
    settings = make_settings(database_url, refused_callbacks_per_minute=len(WRONG_SHAPES))
    async with CatalogClient.started(settings) as catalog:
        statuses = []
        for shape in [*WRONG_SHAPES, *WRONG_SHAPES[:2]]:
            body = {**push("2121_a", BASE), "sign": "0" * 32, **shape}
            statuses.append((await catalog.post_callback(body)).status_code)
        assert statuses == [401] * len(WRONG_SHAPES) + [429] * 2


async def test_past_its_quarantine_limit_a_client_gets_429_but_valid_ones_and_retries_go_on(
    another_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A captured t/sign pair signs any body: signed garbage is kept, but only so much of
    # it per address, or it would take the writer's time from real callbacks. (A database
    # of its own: it reads every inbox entry.)
    caplog.set_level(logging.INFO)
    settings = make_settings(another_database_url, quarantined_callbacks_per_minute=2)
    garbage = [
        sign({**recording("2121_a", f"f{n}", BASE, BASE + 60), "duration": 2**31 - 1})
        for n in range(5)
    ]
    async with clients_of(settings, "10.0.0.1", "10.0.0.2") as (flood, other):
        answers = [await flood.post("/callbacks/tencent", json=event) for event in garbage[:4]]
        assert [a.status_code for a in answers] == [200, 200, 429, 429]
        assert answers[2].json() == {
            "code": 429,
            "message": "too many quarantined callbacks from this address; retry later",
        }
        # A retry of one it stored (its 200 was lost) gets its outcome, as any retry does.
        assert (await flood.post("/callbacks/tencent", json=garbage[0])).status_code == 200
        valid = sign(recording("2121_a", "good", BASE, BASE + 60))
        assert (await flood.post("/callbacks/tencent", json=valid)).status_code == 200
        assert (await other.post("/callbacks/tencent", json=garbage[4])).status_code == 200
        mutation = {"query": INGEST, "variables": {"payload": garbage[3]}}
        answer = (await flood.post("/graphql", json=mutation)).json()
        assert answer["errors"][0]["message"] == answers[2].json()["message"]
    database = Database(settings.database_url)
    try:
        rows = await database.rows(
            select(InboxEntry.outcome, InboxEntry.payload).order_by(col(InboxEntry.id))
        )
    finally:
        await database.dispose()
    assert [(outcome, payload["file_id"]) for outcome, payload in rows] == [
        ("quarantined", "f0"),
        ("quarantined", "f1"),
        ("applied", "good"),
        ("quarantined", "f4"),
    ]
    warnings = [r.getMessage() for r in caplog.records if "quarantined too often" in r.getMessage()]
    assert warnings == [
        "callbacks from 10.0.0.1 are quarantined too often; answering 429 to more for now"
    ]


async def test_a_429_to_a_callback_waits_so_a_flood_is_held_back_and_others_go_on(
    database_url: str,
) -> None:
    settings = make_settings(
        database_url,
        refused_callbacks_per_minute=1,
        quarantined_callbacks_per_minute=1,
        callback_refusal_wait_seconds=1.0,
    )
    forged = {**push("2121_a", BASE), "t": int(time.time()) + 600, "sign": "0" * 32}
    garbage = [
        sign({**recording("2121_b", f"f{n}", BASE, BASE + 60), "event_type": 2**70})
        for n in range(2)
    ]
    async with clients_of(settings, "10.0.0.1", "10.0.0.2", "10.0.0.3") as clients:
        forger, signer, tencent = clients

        async def timed(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[int, float]:
            began = time.monotonic()
            response = await client.post("/callbacks/tencent", json=body)
            return response.status_code, time.monotonic() - began

        assert (await timed(forger, forged))[0] == 401
        assert (await timed(signer, garbage[0]))[0] == 200
        assert (await timed(tencent, sign(push("2121_c", BASE))))[0] == 200
        held = asyncio.gather(timed(forger, forged), timed(signer, garbage[1]))
        await asyncio.sleep(0.05)
        # Others are answered while the two 429s wait (nothing of the service waits).
        assert (await timed(tencent, sign(cut("2121_c", BASE + 60))))[0] == 200
        assert not held.done()
        answers = await held
    assert [status for status, _ in answers] == [429, 429]
    assert all(seconds >= 1.0 for _, seconds in answers), answers


NESTED_BODIES = {
    "brackets": b"[" * 2048,
    "closed-brackets": b"[" * 2000 + b"]" * 2000,
    "objects": b'{"a":' * 2000 + b"1" + b"}" * 2000,
    "inside-a-callback": b'{"event_type": 1, "x": ' + b"[" * 100 + b"]" * 100 + b"}",
}


@pytest.mark.parametrize("body", NESTED_BODIES.values(), ids=NESTED_BODIES.keys())
async def test_a_deeply_nested_body_gets_400_in_one_log_line(
    catalog: CatalogClient, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    caplog.set_level(logging.INFO)
    response = await catalog.http.post(
        "/callbacks/tencent", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "nest" in response.json()["message"]
    lines = [r for r in caplog.records if r.name.startswith("replay_catalog")]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert await inbox_rows(catalog) == []


async def test_a_signed_callback_nested_too_deep_is_refused_and_counted(database_url: str) -> None:
    settings = make_settings(database_url, refused_callbacks_per_minute=2)
    async with CatalogClient.started(settings) as catalog:
        nested: Any = "x"
        for _ in range(100):
            nested = [nested]
        event = sign({**push("2121_a", BASE), "relay": nested})
        statuses = [(await catalog.post_callback(event)).status_code for _ in range(3)]
        assert statuses == [400, 400, 429]


async def test_brackets_inside_strings_and_modest_nesting_are_fine(catalog: CatalogClient) -> None:
    nested: Any = {"session_id": "s1"}
    for _ in range(8):
        nested = {"inner": [nested]}
    brackets = "[[[[{{{{" * 200 + '\\"[{'
    await catalog.send(push("2121_a", BASE, "s1", errmsg=brackets, ext=nested))
    (entry,) = await inbox_rows(catalog)
    assert entry.outcome == "applied"
    assert entry.payload["errmsg"] == brackets and entry.payload["ext"] == nested


INGEST = """mutation($payload: JSON!) {
  ingestTencentEvent(payload: $payload) { accepted duplicate eventType outcome reason }
}"""


async def test_the_mutation_checks_values_at_the_door_too(catalog: CatalogClient) -> None:
    wide = sign({**recording("2121_a", "f1", BASE, BASE + 60), "event_type": 2**70})
    huge = sign({**recording("2121_a", "f2", BASE, BASE + 60), "duration": 2**31 - 1})
    spoiled = sign(recording("2121_a\ud800", "f3", BASE, BASE + 60))
    answers = []
    for payload in (wide, huge, spoiled):
        body = json.dumps({"query": INGEST, "variables": {"payload": payload}})
        response = await catalog.http.post(
            "/graphql", content=body.encode(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
        assert "errors" not in response.json(), response.json()
        answers.append(response.json()["data"]["ingestTencentEvent"])
    assert [(a["accepted"], a["outcome"], a["eventType"]) for a in answers] == [
        (True, "QUARANTINED", None),
        (True, "QUARANTINED", 100),
        (True, "QUARANTINED", 100),
    ]
    assert "event_type is out of range" in answers[0]["reason"]
    assert "duration is out of range" in answers[1]["reason"]
    assert answers[2]["reason"] == SURROGATE_REASON
    assert await catalog.all_rooms() == []


async def test_the_mutation_refuses_a_payload_nested_too_deep(catalog: CatalogClient) -> None:
    nested: Any = "x"
    for _ in range(40):  # deeper than a callback may nest, not than a GraphQL request may
        nested = {"a": nested}
    body = await catalog.graphql(INGEST, {"payload": sign({**push("2121_a", BASE), "x": nested})})
    assert body["data"] is None
    assert [e["message"] for e in body["errors"]] == [
        "payload refused: the callback nests deeper than 32 levels"
    ]
    assert await inbox_rows(catalog) == []


# Values a Tencent field might hold, and some no Tencent field should.
ANY_TEXT = st.text(
    st.characters(exclude_categories=()) | st.sampled_from(["\ud800", "\udfff", "\x00"]),
    max_size=12,
)
ANY_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    ANY_TEXT,
    st.sampled_from(["1", "100", "-7", "1e999", "9" * 25, "mp4", "http://a.b/c.m3u8"]),
)
ANY_JSON = st.recursive(
    ANY_SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)
TENCENT_FIELDS = st.sampled_from(
    [
        "event_type", "stream_id", "channel_id", "event_time", "sequence", "file_id",
        "file_format", "video_url", "video_id", "file_size", "start_time", "end_time",
        "duration", "create_time", "pic_full_url", "width", "height", "push_duration",
        "errcode", "errmsg", "task_id", "record_file_id",
    ]
)  # fmt: skip


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    base=st.sampled_from(
        [
            push("2121_p", BASE, "s1"),
            cut("2121_p", BASE + 60, "s1"),
            recording("2121_p", "fp", BASE, BASE + 60),
            {"event_type": 200, "stream_id": "2121_p", "create_time": BASE},
        ]
    ),
    changes=st.dictionaries(TENCENT_FIELDS | ANY_TEXT, ANY_JSON, max_size=4),
)
async def test_a_signed_callback_of_any_shape_is_never_answered_500(
    catalog: CatalogClient, base: dict[str, Any], changes: dict[str, Any]
) -> None:
    text = json.dumps(sign({**base, **changes}))
    response = await post_json_text(catalog, text)
    assert response.status_code == 200, response.text
    await catalog.all_rooms(fields=ROOM_DURATIONS)  # answers without errors
    await catalog.data(PROFILE, {"userId": "p"})
