"""Several replicas on one PostgreSQL: migrations once, background jobs on one at a time."""

import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import asyncpg
import pytest

from storage.database import Database
from storage.locks import unless_held_elsewhere
from tests.conftest import POSTGRES_SERVER
from tests.servers import COMMAND

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
async def empty_postgres_database() -> AsyncIterator[str]:
    """A new PostgreSQL database with no tables at all, dropped after the test."""
    server = POSTGRES_SERVER.replace("postgresql+asyncpg://", "postgresql://")
    name = f"replay_catalog_empty_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield (
            server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_replicas_starting_together_migrate_once(
    empty_postgres_database: str, tmp_path: Path
) -> None:
    env = {**os.environ, "DATABASE_URL": empty_postgres_database, "LOG_LEVEL": "WARNING"}
    results: list[subprocess.CompletedProcess[bytes]] = []

    async def migrate() -> None:
        results.append(
            await anyio.run_process([*COMMAND, "migrate"], env=env, cwd=tmp_path, check=False)
        )

    with anyio.fail_after(120):
        async with anyio.create_task_group() as replicas:
            for _ in range(4):
                replicas.start_soon(migrate)
    assert [result.returncode for result in results] == [0] * 4, [r.stderr for r in results]
    connection = await asyncpg.connect(
        empty_postgres_database.replace("postgresql+asyncpg://", "postgresql://")
    )
    try:
        versions = await connection.fetch("SELECT version_num FROM alembic_version")
        tables = await connection.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'broadcast'"
        )
    finally:
        await connection.close()
    assert len(versions) == 1 and tables == 1


async def test_a_background_job_runs_on_one_replica_at_a_time(
    empty_postgres_database: str,
) -> None:
    first, second = Database(empty_postgres_database), Database(empty_postgres_database)
    try:
        async with unless_held_elsewhere(first, "reconcile") as mine:
            assert mine
            async with unless_held_elsewhere(second, "reconcile") as theirs:
                assert not theirs
            async with unless_held_elsewhere(second, "another job") as other:
                assert other
        async with unless_held_elsewhere(second, "reconcile") as theirs_now:
            assert theirs_now
    finally:
        await first.dispose()
        await second.dispose()
