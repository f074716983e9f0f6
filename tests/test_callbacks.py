"""POST /callbacks/tencent: authentication, status codes, idempotency and outages."""

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import func, select

from storage import Anchor, InboxEntry, RecordingFile
from tests.catalog_client import (
    BASE,
    CALLBACK_KEY,
    UNREACHABLE_DATABASES,
    CatalogClient,
    cut,
    make_settings,
    push,
    recording,
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
