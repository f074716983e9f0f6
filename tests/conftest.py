"""Test fixtures: the real app over HTTP (httpx + ASGI), on real SQLite and real PostgreSQL.

Every test that takes `catalog` runs twice, once per database. PostgreSQL is the
machine's server (TEST_POSTGRES_URL, default postgres@127.0.0.1:5432/test); when
it cannot be reached the tests fail rather than skip. Deselect them explicitly
with `-m "not postgres"` on a machine without PostgreSQL.

Test modules mark themselves with `pytestmark = pytest.mark.anyio` to run async tests.
"""

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from storage import metadata
from storage.database import Database
from storage.migrate import upgrade_to_head
from tests.catalog_client import CatalogClient, make_settings

POSTGRES_SERVER = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is faster)."""
    import anyio

    path = tmp_path_factory.mktemp("template") / "catalog.db"

    async def migrate() -> None:
        database = Database(f"sqlite+aiosqlite:///{path}")
        await upgrade_to_head(database)
        await database.dispose()

    anyio.run(migrate)
    return path


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, migrated PostgreSQL database on the test server, dropped on leaving."""
    import anyio

    name = f"replay_catalog_test_{uuid.uuid4().hex[:10]}"
    server = POSTGRES_SERVER.replace("postgresql+asyncpg://", "postgresql://")

    async def admin(statement: str) -> None:
        try:
            connection = await asyncpg.connect(server, timeout=10)
        except (OSError, asyncpg.PostgresError) as failure:
            pytest.fail(
                f"PostgreSQL at {server} is not reachable ({failure}); start it, set "
                'TEST_POSTGRES_URL, or deselect these tests with -m "not postgres"',
                pytrace=False,
            )
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    anyio.run(admin, f'CREATE DATABASE "{name}"')
    url = server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    try:

        async def migrate() -> None:
            database = Database(url)
            await upgrade_to_head(database)
            await database.dispose()

        anyio.run(migrate)
        yield url
    finally:
        anyio.run(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated once, dropped at the end."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "catalog.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
def another_database_url(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A second fresh, migrated database of the same kind as `database_url` (for comparing
    two catalogs, or for a server of the test's own): a SQLite file, or a PostgreSQL
    database created for this test and dropped after it."""
    if database_url.startswith("sqlite"):
        path = tmp_path / "another.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    with fresh_postgres_database() as url:
        yield url


async def _empty_tables(database: Database) -> None:
    if database.is_sqlite:
        return  # a fresh copy of the template per test
    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    async with database.engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def catalog(database_url: str) -> AsyncIterator[CatalogClient]:
    """The app on this test's database, with the callback key and admin token configured."""
    database = Database(database_url)
    await _empty_tables(database)
    async with CatalogClient.started(make_settings(database_url), database) as client:
        yield client
