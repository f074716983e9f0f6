"""Alembic migrations: they run on both databases and carry existing data forward."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

import storage
from storage.database import Database
from storage.migrate import migrate_to
from tests.conftest import POSTGRES_SERVER

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database with no tables at all."""
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
        yield database
        await database.dispose()
        return
    name = f"replay_catalog_migrations_{uuid.uuid4().hex[:10]}"
    server = POSTGRES_SERVER.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    database = Database(
        server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    )
    try:
        yield database
    finally:
        await database.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# An anchor and her stream, as every version so far stores them.
ALICE_AND_HER_STREAM = (
    "INSERT INTO anchor (id, user_id, is_placeholder, created_at, updated_at)"
    " VALUES (1, 'alice', false, :now, :now)",
    "INSERT INTO stream (id, stream_id, anchor_id, is_live, created_at)"
    " VALUES (1, '2121_alice', 1, false, :now)",
)


async def test_curation_migration_keeps_replays_and_finds_their_covers(
    empty_database: Database,
) -> None:
    await migrate_to(empty_database, "0001")
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    # Rows as version 0001 wrote them (fixed test data, no user input).
    async with empty_database.engine.begin() as connection:
        for statement in (
            *ALICE_AND_HER_STREAM,
            "INSERT INTO broadcast (id, stream_pk, started_at, ended_at, is_live, recording_count,"
            " room_rank, room_time, updated_at)"
            " VALUES (1, 1, :now, :now, false, 1, 1, :now, :now)",
            "INSERT INTO screenshot (id, stream_pk, broadcast_id, taken_at, url) VALUES"
            " (1, 1, 1, '2026-11-01 12:05:00+00:00', 'http://x/late.jpg'),"
            " (2, 1, 1, '2026-11-01 12:01:00+00:00', 'http://x/early.jpg')",
        ):
            await connection.execute(text(statement), {"now": now})

    await migrate_to(empty_database, "head")
    async with empty_database.engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT room_rank, cover_url, featured, hidden, deleted_at FROM broadcast")
            )
        ).one()
    assert tuple(row) == (2, "http://x/early.jpg", False, False, None)

    await migrate_to(empty_database, "0001", downgrade=True)
    async with empty_database.engine.connect() as connection:
        rank = (await connection.execute(text("SELECT room_rank FROM broadcast"))).scalar_one()
    assert rank == 1


async def test_pushes_keep_whether_they_started_when_event_numbers_leave_the_tables(
    empty_database: Database,
) -> None:
    await migrate_to(empty_database, "0006")
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    # Rows as version 0006 wrote them: Tencent's event numbers, 1 push and 0 cut-off.
    async with empty_database.engine.begin() as connection:
        for statement in (
            *ALICE_AND_HER_STREAM,
            "INSERT INTO push_event (id, stream_pk, event_type, event_time, sequence) VALUES"
            " (1, 1, 1, :now, 's1'), (2, 1, 0, :now, 's1')",
        ):
            await connection.execute(text(statement), {"now": now})

    await migrate_to(empty_database, "head")
    async with empty_database.engine.begin() as connection:
        rows = (await connection.execute(text("SELECT id, started FROM push_event"))).all()
        assert sorted((row[0], bool(row[1])) for row in rows) == [(1, True), (2, False)]
        # The same push twice is still one fact.
        with pytest.raises(IntegrityError):
            async with connection.begin_nested():
                await connection.execute(
                    text(
                        "INSERT INTO push_event (stream_pk, started, event_time, sequence)"
                        " VALUES (1, true, :now, 's1')"
                    ),
                    {"now": now},
                )

    await migrate_to(empty_database, "0006", downgrade=True)
    async with empty_database.engine.connect() as connection:
        rows = (await connection.execute(text("SELECT id, event_type FROM push_event"))).all()
    assert sorted(tuple(row) for row in rows) == [(1, 1), (2, 0)]


async def test_the_migrations_build_the_tables_the_code_declares(
    empty_database: Database,
) -> None:
    await migrate_to(empty_database, "head")

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, storage.metadata))

    async with empty_database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []
