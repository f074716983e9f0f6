"""The unit of work: every write says what it changed, and callers get that description."""

import asyncio

import pytest

from domain.events import RecordingFileReady
from resolvers.ingestion import Ingestor
from storage.database import Database
from storage.unit_of_work import CatalogChanges
from tencent import parse_callback
from tests.catalog_client import (
    BASE,
    CALLBACK_KEY,
    CatalogClient,
    make_settings,
    push,
    recording,
    screenshot,
    sign,
)

pytestmark = pytest.mark.anyio


def ingestor_of(catalog: CatalogClient) -> Ingestor:
    rules = make_settings(catalog.database.url).grouping_rules()
    return Ingestor(catalog.database, CALLBACK_KEY, rules)


async def test_a_callback_says_which_broadcast_and_stream_it_changed(
    catalog: CatalogClient,
) -> None:
    ingestor = ingestor_of(catalog)
    result = await ingestor.ingest_callback(sign(push("2121_a", BASE)))
    assert result.outcome == "applied"
    assert result.changes.streams == {"2121_a"}
    assert len(result.changes.broadcasts) == 1
    assert result.changes.room_list
    [announced] = result.changes.announcements
    assert announced.broadcast_ids == tuple(result.changes.broadcasts)


async def test_a_retried_callback_changes_nothing(catalog: CatalogClient) -> None:
    ingestor = ingestor_of(catalog)
    event = recording("2121_a", "a1", BASE, BASE + 60)
    assert await ingestor.ingest_callback(sign(event))
    again = await ingestor.ingest_callback(sign(event))
    assert again.duplicate
    assert not again.changes


async def test_applying_domain_events_returns_what_changed_and_is_idempotent(
    catalog: CatalogClient,
) -> None:
    ingestor = ingestor_of(catalog)
    stored = await ingestor.ingest_callback(sign(recording("2121_a", "a1", BASE, BASE + 60)))
    assert stored.changes
    # The same file again, as a domain event (what reconciliation passes).
    event = parse_callback(recording("2121_a", "a1", BASE, BASE + 60), now=BASE + 120)
    assert isinstance(event, RecordingFileReady)
    assert not await ingestor.apply([event])
    newer = parse_callback(recording("2121_a", "a2", BASE + 60, BASE + 120), now=BASE + 180)
    assert isinstance(newer, RecordingFileReady)
    changes = await ingestor.apply([newer])
    assert changes.streams == {"2121_a"} and changes.broadcasts


async def test_a_fact_delivered_again_in_another_payload_changes_nothing(
    catalog: CatalogClient,
) -> None:
    """A push, a screenshot or a file sent again with other bytes (a new inbox entry)
    is the same fact: its key (times included) is found stored, alone or in a batch."""
    ingestor = ingestor_of(catalog)
    events = [
        push("2121_a", BASE, "s1"),
        screenshot("2121_a", BASE + 10),
        recording("2121_a", "a1", BASE, BASE + 60),
    ]
    for event in events:
        assert (await ingestor.ingest_callback(sign(event))).changes
    again = [{**event, "retried": n} for n, event in enumerate(events)]
    for event in again:
        result = await ingestor.ingest_callback(sign(event))
        assert not result.duplicate and not result.changes
    together = await asyncio.gather(
        *(ingestor.ingest_callback(sign({**event, "retried": "again"})) for event in events)
    )
    assert [result.changes for result in together] == [CatalogChanges()] * len(events)


@pytest.mark.postgres
async def test_an_asyncpg_style_ssl_parameter_reaches_the_writer_as_sslmode(
    postgres_database: str,
) -> None:
    """Writes run on psycopg (libpq), which knows `sslmode`, not asyncpg's `ssl`: a
    DATABASE_URL written for asyncpg must work for writes too."""
    database = Database(f"{postgres_database}?ssl=disable")
    try:
        await database.ping()
        assert await database.write(lambda work: 1) == 1
    finally:
        await database.dispose()
